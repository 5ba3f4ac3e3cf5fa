import { type Kysely, sql } from 'kysely';

/**
 * What the segment compiler's SQL relies on: indexed case-insensitive tags and a safe timestamp
 * parse for custom date fields (created in the connection's current schema).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    // Tag conditions match case-insensitively against `tags_ci`: data.tags with its JSON text
    // lower-cased (which lower-cases exactly its strings), kept by PostgreSQL on every write
    // (~0.4 µs a row, immutable built-ins only). A stored column rather than an expression index
    // because GIN jsonb lookups are lossy: every candidate row is rechecked, and rechecking a plain
    // column is as cheap as the case-sensitive `data -> 'tags' ? …`, where re-deriving the
    // lower-cased value per row made 1M-contact segment counts ~25% slower. Never written by the
    // application (it is not in the Kysely table type) and never shown in the API.
    sql`alter table contacts add column tags_ci jsonb not null
      generated always as (coalesce(lower((data -> 'tags')::text)::jsonb, '[]'::jsonb)) stored`,
    sql`create index contacts_tags_ci on contacts using gin (tags_ci)`,
    // Custom date fields are free text in `data`: a value that is not a valid timestamp must read
    // as "no date", never abort the whole segment query. Date-only and zone-less values are UTC.
    sql`create function mw_try_timestamptz(value text) returns timestamptz
      language plpgsql stable parallel safe
      set timezone = 'UTC'
      as $$
      begin
        if value is null or value !~ '^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}' then
          return null;
        end if;
        return value::timestamptz;
      exception when others then
        return null;
      end
      $$`,
  ];
  for (const statement of statements) await statement.execute(db);
}

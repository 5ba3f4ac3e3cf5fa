import { AppError, ErrorCollector, invalid, notFound } from '../../lib/errors.ts';
import { type Design, validateDesign } from '../../render/components.ts';
import { type MergeVars, mergeTagError } from '../../render/merge.ts';
import { brandRenderContext, compileDesign, personalize } from '../../render/render.ts';
import { templateSpec } from '../../render/spec.ts';
import type { Brand } from '../../store/schema.ts';
import {
  countTemplates,
  deleteTemplate,
  findTemplate,
  insertTemplate,
  listTemplates,
  type TemplateRow,
  type TemplateScope,
  type TemplateValues,
  updateTemplate,
} from '../../store/templates.ts';
import type { Deps } from '../deps.ts';
import { STARTERS, type Starter } from './starters.ts';

export type { TemplateScope };

/** Body of create (`name` required there) and update (everything optional, plus `if_version`). */
export type TemplateInput = {
  name?: string | undefined;
  subject?: string | null | undefined;
  preheader?: string | null | undefined;
  body?: string | null | undefined;
  from_name?: string | null | undefined;
  from_email?: string | null | undefined;
  reply_to?: string | null | undefined;
  category?: string | null | undefined;
  generation_id?: number | null | undefined;
  design?: unknown;
};

/** Merge values a preview is personalised with, so it shows real text rather than empty tags. */
export function sampleMergeVars(brand: Brand, appUrl: string): MergeVars {
  const contact = {
    first_name: 'Alex',
    last_name: 'Taylor',
    email: 'alex@example.com',
    data: { company: 'Example Co', plan: 'Pro' },
  };
  return {
    contact,
    brand: {
      company_name: brand.company_name ?? 'Your company',
      physical_address: brand.physical_address ?? '',
    },
    event: { name: 'preview', amount: 42, resource_name: 'Sample product', resource_url: appUrl },
    data: {
      reset_url: `${appUrl}/reset-password/preview`,
      order_id: '10042',
      order_total: '$86.00',
      tracking_url: `${appUrl}/track/preview`,
    },
    unsubscribe_url: `${appUrl}/unsubscribe/preview`,
  };
}

/** Adds an error for `field` when its merge tags do not parse (or use a refused tag such as include). */
function checkMergeTags(field: string, text: string | null | undefined, errors: ErrorCollector): void {
  const reason = text ? mergeTagError(text) : null;
  if (reason) errors.add(field, `has an invalid merge tag: ${reason}`);
}

/**
 * The merge variables a template refers to, keyed by path (`first_name`, `data.reset_url`), each with
 * its `| default:` value when one is given (else null). Derived on every read.
 */
export function templateVariables(row: Pick<TemplateRow, 'subject' | 'preheader' | 'body' | 'design'>) {
  const text = [row.subject, row.preheader, row.body, row.design ? JSON.stringify(row.design) : '']
    .filter(Boolean)
    .join('\n')
    // The design arrives JSON-encoded: its quotes are escaped.
    .replaceAll('\\"', '"');
  const variables: Record<string, string | null> = {};
  const tag = /\{\{-?\s*([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)((?:\s*\|[^}]*)?)\s*-?\}\}/g;
  for (const match of text.matchAll(tag)) {
    const path = match[1]!;
    const fallback = /\|\s*default\s*:\s*(?:"([^"]*)"|'([^']*)')/.exec(match[2] ?? '');
    const value = fallback ? (fallback[1] ?? fallback[2] ?? null) : null;
    if (!(path in variables) || (variables[path] === null && value !== null)) variables[path] = value;
  }
  return variables;
}

/** The API's full view of a template. */
export function templateView(row: TemplateRow) {
  return {
    id: row.id,
    name: row.name,
    flow_id: row.flow_id,
    action_id: row.action_id,
    subject: row.subject,
    body: row.body,
    preheader: row.preheader,
    from_name: row.from_name,
    from_email: row.from_email,
    reply_to: row.reply_to,
    category: row.category,
    design: row.design,
    variables: templateVariables(row),
    generation_id: row.generation_id,
    version: row.version,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export type TemplateView = ReturnType<typeof templateView>;

function sectionsOf(design: unknown): { type: string }[] {
  const sections = (design as { sections?: unknown } | null)?.sections;
  return Array.isArray(sections) ? (sections as { type: string }[]) : [];
}

/** The list view: no design, its shape summarised as a count and the distinct section types. */
export function templateSummary(row: TemplateRow) {
  const sections = sectionsOf(row.design);
  return {
    id: row.id,
    name: row.name,
    subject: row.subject,
    preheader: row.preheader,
    category: row.category,
    flow_id: row.flow_id,
    action_id: row.action_id,
    section_count: sections.length,
    section_types: [...new Set(sections.map((s) => s.type))],
    version: row.version,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export type TemplateSummary = ReturnType<typeof templateSummary>;

/** Validates a template's design; errors are named from the template body (`design.sections[0]…`). */
function validateTemplateDesign(design: unknown): Design {
  try {
    return validateDesign(design);
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    if (error.status === 400) throw invalid({ design: [error.message] }, undefined, 'invalid_design');
    const prefixed = Object.fromEntries(
      Object.entries(error.validationErrors ?? { '': [error.message] }).map(([k, v]) => [
        k ? `design.${k}` : 'design',
        v,
      ]),
    );
    throw invalid(prefixed, `Invalid design: ${error.message}`, error.errorCode ?? 'invalid_design');
  }
}

/** Checks the input and turns it into column values. */
function prepare(input: TemplateInput): TemplateValues {
  const errors = new ErrorCollector();
  const values: TemplateValues = {};
  if (input.name !== undefined) {
    values.name = input.name.trim();
    if (values.name === '') errors.add('name', "can't be blank");
  }
  for (const field of ['subject', 'preheader', 'body'] as const) {
    checkMergeTags(field, input[field], errors);
    if (input[field] !== undefined) values[field] = input[field];
  }
  for (const field of ['from_name', 'category', 'generation_id'] as const) {
    if (input[field] !== undefined) (values as Record<string, unknown>)[field] = input[field];
  }
  for (const field of ['from_email', 'reply_to'] as const) {
    const value = input[field];
    if (value !== undefined) values[field] = value === null ? null : value.trim().toLowerCase();
  }
  let design: Design | null | undefined;
  if (input.design !== undefined && input.design !== null) {
    try {
      design = validateTemplateDesign(input.design);
    } catch (error) {
      if (!(error instanceof AppError) || !error.validationErrors) throw error;
      for (const [field, messages] of Object.entries(error.validationErrors)) {
        for (const message of messages) errors.add(field, message);
      }
    }
  } else if (input.design === null) {
    design = null;
  }
  if (!errors.empty) {
    const designOnly = Object.keys(errors.errors).every((k) => k.startsWith('design'));
    throw invalid(errors.errors, undefined, designOnly ? 'invalid_design' : 'validation_failed');
  }
  if (design !== undefined) values.design = design as Record<string, unknown> | null;
  return values;
}

/** The brand's colours, fonts and logo as a design theme (only the fields the brand has set). */
export function brandTheme(brand: Brand): Record<string, string> {
  const theme: Record<string, string> = {};
  for (const [key, value] of Object.entries(brand.default_theme ?? {})) {
    if (typeof value === 'string' && value !== '') theme[key] = value;
  }
  const fields = {
    brand_color: brand.brand_color,
    bg_color: brand.bg_color,
    text_color: brand.text_color,
    font_body: brand.font_body,
    font_heading: brand.font_heading,
    logo_url: brand.logo,
  };
  for (const [key, value] of Object.entries(fields)) if (value) theme[key] = value;
  return theme;
}

/** A starter's design with the brand's theme merged over the starter's own. */
export function brandedStarterDesign(starter: Starter, brand: Brand): Design {
  return { ...starter.design, theme: { ...(starter.design.theme ?? {}), ...brandTheme(brand) } } as Design;
}

/** Email templates of a brand: CRUD, preview, the component spec and the starter designs. */
export function createTemplateService({ db, clock, config }: Deps) {
  async function loadOrThrow(scope: TemplateScope, id: number): Promise<TemplateRow> {
    const row = await findTemplate(db, scope, id);
    if (!row) throw notFound('Template');
    return row;
  }

  /** Renders a validated design as the brand's marketing email, personalised with sample values. */
  async function renderPreview(design: Design, brand: Brand): Promise<string> {
    const compiled = await compileDesign(design, brandRenderContext(brand), { marketing: true });
    return personalize(compiled, sampleMergeVars(brand, config.appUrl)).html;
  }

  return {
    /** A page of the brand's template summaries, newest first. */
    async list(scope: TemplateScope, limit: number, offset: number) {
      const [rows, total] = await Promise.all([
        listTemplates(db, scope, limit, offset),
        countTemplates(db, scope),
      ]);
      return { items: rows.map(templateSummary), total };
    },

    /** One template of the brand with its full design, or 404. */
    async get(scope: TemplateScope, id: number): Promise<TemplateView> {
      return templateView(await loadOrThrow(scope, id));
    },

    /** Creates a standalone template; the design is validated against the component registry. */
    async create(scope: TemplateScope, input: TemplateInput & { name: string }): Promise<TemplateView> {
      const values = prepare(input);
      const row = await insertTemplate(
        db,
        scope,
        { ...values, name: values.name ?? input.name },
        clock.now(),
      );
      return templateView(row);
    },

    /**
     * Changes the given fields and increments `version`. With `if_version`, a template changed since
     * that version is left alone: 409 template_version_conflict.
     */
    async update(
      scope: TemplateScope,
      id: number,
      input: TemplateInput & { if_version?: number | undefined },
    ) {
      const values = prepare(input);
      const row = await updateTemplate(db, scope, id, values, clock.now(), input.if_version);
      if (row) return templateView(row);
      const current = await loadOrThrow(scope, id);
      throw new AppError(
        'conflict',
        `The template has changed since version ${input.if_version} (now version ${current.version}); reload it and retry`,
        { errorCode: 'template_version_conflict' },
      );
    },

    /**
     * Deletes a template, refusing one owned by a flow step (422 template_in_use) — which includes every
     * campaign's template, owned by the step of the campaign's backing flow. Such a template goes with
     * its flow or campaign.
     */
    async remove(scope: TemplateScope, id: number): Promise<TemplateView> {
      const row = await loadOrThrow(scope, id);
      if (row.flow_id !== null) {
        throw new AppError(
          'validation',
          'This template belongs to a flow or campaign; delete or edit it there',
          {
            errorCode: 'template_in_use',
            validationErrors: { id: ['is used by a flow or campaign'] },
          },
        );
      }
      await deleteTemplate(db, scope, id);
      return templateView(row);
    },

    /** Renders a design document as the brand's email: 400 for a malformed document, 422 for bad sections. */
    async preview(brand: Brand, document: unknown): Promise<{ html: string }> {
      return { html: await renderPreview(validateDesign(document), brand) };
    },

    /** The component spec: section types, their props, styles, variables and theme fields. */
    spec() {
      return templateSpec();
    },

    /** Every starter design with the brand's theme merged in and a rendered preview. */
    starters(brand: Brand) {
      return Promise.all(
        STARTERS.map(async (starter) => {
          const design = brandedStarterDesign(starter, brand);
          return {
            id: starter.id,
            category: starter.category,
            name: starter.name,
            description: starter.description,
            icon: starter.icon,
            suggested_goals: starter.suggested_goals,
            design,
            preview_html: await renderPreview(design, brand),
          };
        }),
      );
    },
  };
}

export type TemplateService = ReturnType<typeof createTemplateService>;

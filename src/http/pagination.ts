import type { FastifyReply } from 'fastify';

export const MAX_PAGE_SIZE = 100;

export type PageRequest = { page: number; limit: number; offset: number };

/** Reads page and size (`limit`, `per`, `per_page`), clamping the size to 100. */
export function pageRequest(
  query: {
    page?: number | undefined;
    limit?: number | undefined;
    per?: number | undefined;
    per_page?: number | undefined;
  },
  defaultLimit: number,
): PageRequest {
  const page = query.page ?? 1;
  const limit = Math.min(MAX_PAGE_SIZE, query.limit ?? query.per ?? query.per_page ?? defaultLimit);
  return { page, limit, offset: (page - 1) * limit };
}

/** Sets the five pagination headers and returns the items as the bare-array body. */
export function paginate<T>(reply: FastifyReply, request: PageRequest, items: T[], total: number): T[] {
  const totalPages = Math.max(1, Math.ceil(total / request.limit));
  reply.header('X-Total-Count', String(total));
  reply.header('X-Total-Pages', String(totalPages));
  reply.header('X-Page-Number', String(request.page));
  if (request.page < totalPages) reply.header('X-Next-Page', String(request.page + 1));
  if (request.page > 1) reply.header('X-Prev-Page', String(Math.min(request.page - 1, totalPages)));
  return items;
}

/** Paginates an in-memory list (for small per-account collections). */
export function paginateArray<T>(reply: FastifyReply, request: PageRequest, all: T[]): T[] {
  return paginate(reply, request, all.slice(request.offset, request.offset + request.limit), all.length);
}

/**
 * The closed set of failures the domain may report. Transports (HTTP, MCP) map them to their own
 * shapes in one place each; the domain never knows about HTTP.
 */
export const ERROR_KINDS = {
  bad_request: 400,
  unauthorized: 401,
  payment_required: 402,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  validation: 422,
  locked: 422,
  rate_limited: 429,
  unavailable: 503,
} as const;

export type ErrorKind = keyof typeof ERROR_KINDS;

/** field → messages, as in the API's `validation_errors`. */
export type ValidationErrors = Record<string, string[]>;

export type AppErrorOptions = {
  errorCode?: string;
  validationErrors?: ValidationErrors;
  /** Extra top-level fields of the error body (e.g. `status`, `hint`). */
  extra?: Record<string, unknown>;
  /** Seconds until a retry may succeed (429). */
  retryAfter?: number;
};

/** A failure the caller can act on. Anything else is a bug and becomes a 500. */
export class AppError extends Error {
  readonly kind: ErrorKind;
  readonly errorCode: string | undefined;
  readonly validationErrors: ValidationErrors | undefined;
  readonly extra: Record<string, unknown> | undefined;
  readonly retryAfter: number | undefined;

  constructor(kind: ErrorKind, message: string, options: AppErrorOptions = {}) {
    super(message);
    this.name = 'AppError';
    this.kind = kind;
    this.errorCode = options.errorCode;
    this.validationErrors = options.validationErrors;
    this.extra = options.extra;
    this.retryAfter = options.retryAfter;
  }

  get status(): number {
    return ERROR_KINDS[this.kind];
  }
}

/** 404 for a record that does not exist or belongs to another tenant (indistinguishable on purpose). */
export function notFound(what = 'Resource'): AppError {
  return new AppError('not_found', `${what} not found`, { errorCode: 'not_found' });
}

/** 422 naming each bad field. */
export function invalid(
  validationErrors: ValidationErrors,
  message?: string,
  errorCode = 'validation_failed',
): AppError {
  const first = Object.entries(validationErrors)[0];
  const text = message ?? (first ? `${first[0]} ${first[1][0]}` : 'Validation failed');
  return new AppError('validation', text, { validationErrors, errorCode });
}

/** Collects field errors and throws them together. */
export class ErrorCollector {
  readonly errors: ValidationErrors = {};
  add(field: string, message: string): void {
    const list = this.errors[field] ?? [];
    list.push(message);
    this.errors[field] = list;
  }
  get empty(): boolean {
    return Object.keys(this.errors).length === 0;
  }
  throwIfAny(): void {
    if (!this.empty) throw invalid(this.errors);
  }
}

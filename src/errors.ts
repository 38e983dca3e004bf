/**
 * Every error Quarry raises on purpose, in one table: a stable code, an actionable message, and the CLI exit
 * code and the HTTP status (the server's error bodies use the same codes). Errors keep the failing input and their `cause`.
 */

export const ERRORS = {
  INVALID_FILTER: { exit: 2, http: 400, message: 'Invalid metadata filter' },
  INVALID_ARGUMENT: { exit: 2, http: 400, message: 'Invalid argument' },
  INVALID_CONFIG: { exit: 2, http: 400, message: 'Invalid configuration' },
  CONTEXT_BUDGET: { exit: 2, http: 400, message: 'The prompt does not fit the model context window' },
  NOT_FOUND: { exit: 4, http: 404, message: 'Not found' },
  STORE_NOT_FOUND: { exit: 4, http: 404, message: 'Store not found' },
  STORE_OPEN: { exit: 5, http: 503, message: 'Cannot open the store' },
  STORE_SCHEMA: { exit: 5, http: 503, message: 'Store schema is newer than this version of Quarry' },
  STORE_READONLY: { exit: 5, http: 503, message: 'The store is read-only' },
  STORE_WRITE: { exit: 5, http: 503, message: 'Cannot write to the store' },
  STORE_CONFIG_MISMATCH: { exit: 5, http: 409, message: 'Store was created with different index settings' },
  PARSE_FAILED: { exit: 6, http: 422, message: 'Could not parse file' },
  UNSUPPORTED_FILE: { exit: 6, http: 415, message: 'Unsupported file type' },
  FILE_TOO_LARGE: { exit: 6, http: 413, message: 'File exceeds the size limit' },
  ARCHIVE_BOMB: { exit: 6, http: 422, message: 'Archive would inflate past the limits' },
  PARSE_MEMORY_LIMIT: { exit: 6, http: 422, message: 'Parser exceeded its memory limit' },
  PARSE_TIMEOUT: { exit: 6, http: 422, message: 'Parser exceeded its time limit' },
  EMPTY_DOCUMENT: { exit: 6, http: 422, message: 'Document has no text' },
  BINARY_FILE: { exit: 6, http: 415, message: 'File looks binary, not text' },
  INVALID_UTF8: { exit: 6, http: 422, message: 'File is not valid UTF-8' },
  UNREADABLE_FILE: { exit: 6, http: 422, message: 'Cannot read file' },
  INVALID_RECORD: { exit: 6, http: 422, message: 'Invalid JSON record' },
  DATASET: { exit: 7, http: 422, message: 'Invalid dataset' },
  EMBEDDING_FAILED: { exit: 8, http: 502, message: 'Embedding failed' },
  EMBEDDING_MODEL_LOAD: { exit: 2, http: 500, message: 'Cannot load the embedding model' },
  EMBEDDING_MODEL_MISMATCH: { exit: 5, http: 409, message: 'Embedding model does not match the index' },
  RANKER_MODEL: { exit: 2, http: 500, message: 'Invalid ranker model' },
  PRIVACY_KEY: { exit: 2, http: 500, message: 'PII vault key is missing or malformed' },
  PRIVACY_KEY_MISMATCH: { exit: 5, http: 500, message: 'Wrong key for the PII vault' },
  PRIVACY_VAULT: { exit: 5, http: 500, message: 'PII vault problem' },
  PRIVACY_TOKEN_UNKNOWN: { exit: 2, http: 422, message: 'Placeholder was not issued by this PII vault' },
  LLM_FAILED: { exit: 9, http: 502, message: 'LLM request failed' },
  LLM_UNAVAILABLE: { exit: 9, http: 503, message: 'LLM service unavailable' },
  LLM_TIMEOUT: { exit: 9, http: 504, message: 'LLM request timed out' },
  LLM_PROTOCOL: { exit: 9, http: 502, message: 'LLM response did not follow the protocol' },
  LLM_OUTPUT_INVALID: { exit: 9, http: 502, message: 'LLM output does not match the requested JSON Schema' },
  RERANK_FAILED: { exit: 10, http: 502, message: 'Reranking failed' },
  RERANK_MODEL_LOAD: { exit: 2, http: 500, message: 'Cannot load the reranking model' },
  UNAUTHORIZED: { exit: 2, http: 401, message: 'Missing or unknown API key' },
  FORBIDDEN: { exit: 2, http: 403, message: 'Not allowed' },
  RATE_LIMITED: { exit: 2, http: 429, message: 'Too many requests' },
  BUDGET_EXCEEDED: { exit: 2, http: 429, message: 'Budget exceeded' },
  PAYLOAD_TOO_LARGE: { exit: 2, http: 413, message: 'Request body too large' },
  REQUEST_TIMEOUT: { exit: 2, http: 504, message: 'Request timed out' },
  UNAVAILABLE: { exit: 5, http: 503, message: 'Service unavailable' },
  OVERLOADED: { exit: 5, http: 503, message: 'Server over capacity' },
  CACHE_UNAVAILABLE: { exit: 11, http: 503, message: 'Cache backend unavailable' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class QuarryError extends Error {
  readonly code: ErrorCode;
  /** Structured context: the file, field, filter path… that failed. */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, detail: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(`${ERRORS[code].message}: ${detail}`, cause === undefined ? undefined : { cause });
    this.name = 'QuarryError';
    this.code = code;
    this.details = details;
  }

  get exitCode(): number {
    return ERRORS[this.code].exit;
  }

  get httpStatus(): number {
    return ERRORS[this.code].http;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.details };
  }
}

export function isQuarryError(e: unknown): e is QuarryError {
  return e instanceof QuarryError;
}

/** A one-line description of any thrown value, for per-file error reports. */
export function describeError(e: unknown): { code: string; message: string } {
  if (e instanceof QuarryError) return { code: e.code, message: e.message };
  if (e instanceof Error) return { code: 'INTERNAL', message: e.message };
  return { code: 'INTERNAL', message: String(e) };
}

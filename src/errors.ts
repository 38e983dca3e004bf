/**
 * Every error Quarry raises on purpose, in one table: a stable code, an actionable message, and the CLI exit
 * code (the HTTP status will come from the same table). Errors keep the failing input and their `cause`.
 */

export const ERRORS = {
  INVALID_FILTER: { exit: 2, message: 'Invalid metadata filter' },
  INVALID_ARGUMENT: { exit: 2, message: 'Invalid argument' },
  INVALID_CONFIG: { exit: 2, message: 'Invalid configuration' },
  CONTEXT_BUDGET: { exit: 2, message: 'The prompt does not fit the model context window' },
  NOT_FOUND: { exit: 4, message: 'Not found' },
  STORE_NOT_FOUND: { exit: 4, message: 'Store not found' },
  STORE_OPEN: { exit: 5, message: 'Cannot open the store' },
  STORE_SCHEMA: { exit: 5, message: 'Store schema is newer than this version of Quarry' },
  STORE_CONFIG_MISMATCH: { exit: 5, message: 'Store was created with different index settings' },
  PARSE_FAILED: { exit: 6, message: 'Could not parse file' },
  UNSUPPORTED_FILE: { exit: 6, message: 'Unsupported file type' },
  FILE_TOO_LARGE: { exit: 6, message: 'File exceeds the size limit' },
  EMPTY_DOCUMENT: { exit: 6, message: 'Document has no text' },
  BINARY_FILE: { exit: 6, message: 'File looks binary, not text' },
  INVALID_UTF8: { exit: 6, message: 'File is not valid UTF-8' },
  UNREADABLE_FILE: { exit: 6, message: 'Cannot read file' },
  INVALID_RECORD: { exit: 6, message: 'Invalid JSON record' },
  DATASET: { exit: 7, message: 'Invalid dataset' },
  EMBEDDING_FAILED: { exit: 8, message: 'Embedding failed' },
  EMBEDDING_MODEL_LOAD: { exit: 2, message: 'Cannot load the embedding model' },
  EMBEDDING_MODEL_MISMATCH: { exit: 5, message: 'Embedding model does not match the index' },
  RANKER_MODEL: { exit: 2, message: 'Invalid ranker model' },
  PRIVACY_KEY: { exit: 2, message: 'PII vault key is missing or malformed' },
  PRIVACY_KEY_MISMATCH: { exit: 5, message: 'Wrong key for the PII vault' },
  PRIVACY_VAULT: { exit: 5, message: 'PII vault problem' },
  LLM_FAILED: { exit: 9, message: 'LLM request failed' },
  LLM_UNAVAILABLE: { exit: 9, message: 'LLM service unavailable' },
  LLM_TIMEOUT: { exit: 9, message: 'LLM request timed out' },
  LLM_PROTOCOL: { exit: 9, message: 'LLM response did not follow the protocol' },
  LLM_OUTPUT_INVALID: { exit: 9, message: 'LLM output does not match the requested JSON Schema' },
  RERANK_FAILED: { exit: 10, message: 'Reranking failed' },
  RERANK_MODEL_LOAD: { exit: 2, message: 'Cannot load the reranking model' },
  CACHE_UNAVAILABLE: { exit: 11, message: 'Cache backend unavailable' },
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

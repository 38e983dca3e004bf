/**
 * Loading heavy optional libraries on first use. Start-up matters (every CLI call pays it, and a server's
 * cold start): the BPE tables, the phone-number metadata and the JSON Schema compiler together cost most of a
 * second to load, and most commands never touch them. Each returns the same module on every call.
 */
import { createRequire } from 'node:module';

const requireFromHere = createRequire(import.meta.url);

/**
 * A synchronous loader for a package that also ships CommonJS, for libraries used behind synchronous APIs
 * (token counting, PII detection). The type is the module's own, e.g. `lazyModule<typeof import('ajv')>('ajv')`.
 */
export function lazyModule<T>(specifier: string): () => T {
  let loaded: T | undefined;
  return () => {
    loaded ??= requireFromHere(specifier) as T;
    return loaded;
  };
}

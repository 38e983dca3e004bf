/**
 * What every conformance suite runs a component against inside Quarry: a few documents in a real store in
 * a temp dir, opened with the component under test as `components.<family>`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { QuarryConfigInput } from '../../src/config/config.js';
import { type DocumentInput, Quarry, type QuarryComponents } from '../../src/index.js';

export const CORPUS: DocumentInput[] = [
  {
    id: 'crash',
    markdown:
      '# Crash safety\n\nEvery ingest batch is one transaction, so the store survives a crash. A document is either present or absent after a crash, never half written.',
  },
  {
    id: 'bm25',
    markdown:
      '# Lexical search\n\nBM25 ranks chunks by term frequency and inverse document frequency with Lucene length norms.',
  },
  {
    id: 'keys',
    text: 'Signing keys are rotated every ninety days by the vault operator. Old keys stay valid for seven days.',
  },
  {
    id: 'lunch',
    text: 'The cafeteria serves lunch from noon until two. On Fridays there is a pizza buffet.',
  },
];

/** A Quarry on a fresh temp store with `components`; `close()` removes everything. */
export function openWith(
  components: QuarryComponents,
  config: QuarryConfigInput = {},
): { quarry: Quarry; close(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-conformance-'));
  const quarry = Quarry.open({ store: dir, config, components });
  return {
    quarry,
    close() {
      quarry.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An aborted signal, with the reason a caller would give. */
export function aborted(): AbortSignal {
  const c = new AbortController();
  c.abort(new Error('caller aborted'));
  return c.signal;
}

/** Settles `p` within `ms` or fails: an aborted call must not hang. */
export async function settlesWithin<T>(
  p: Promise<T>,
  ms: number,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms);
  });
  try {
    const value = await Promise.race([p, timeout]);
    return { ok: true, value };
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('did not settle')) throw error;
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Every tokenizer passes the same suite: o200k (chunks), a generation model's exact encoding, an estimated
 * one (scaled cl100k, no token ids), and a tokenizer a library user writes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Quarry, type Tokenizer, tokenizerFor } from '../../src/index.js';
import { CHUNK_TOKENIZER } from '../../src/ingest/tokens.js';
import { CORPUS } from './corpus.js';
import { tokenizerConformance } from './tokenizer.js';

tokenizerConformance('o200k (chunks)', () => CHUNK_TOKENIZER);
tokenizerConformance('gpt-4o (exact)', () => tokenizerFor('gpt-4o'));
tokenizerConformance('claude (estimated ×1.5)', () => tokenizerFor('claude-sonnet-4-5'));

/** What a library user writes: one token per word or symbol, with ids from a growing vocabulary. */
function wordTokenizer(): Tokenizer & { calls: number } {
  const vocab = new Map<string, number>();
  const encode = (text: string) =>
    (text.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? []).map((w) => {
      if (!vocab.has(w)) vocab.set(w, vocab.size);
      return vocab.get(w)!;
    });
  const t = {
    id: 'user:words',
    calls: 0,
    encode,
    count(text: string) {
      t.calls++;
      return encode(text).length;
    },
  };
  return t;
}

tokenizerConformance('user-written object', wordTokenizer);

describe('a user tokenizer decides chunk sizes', () => {
  it('measures the chunks, and switching tokenizers re-chunks what is stored', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-tok-'));
    const chunking = { chunking: { maxTokens: 16, overlapTokens: 0, parentMaxTokens: 64 } };
    try {
      const before = Quarry.open({ store: dir, config: chunking });
      await before.addDocuments(CORPUS);
      expect((await before.addDocuments(CORPUS)).unchanged).toBe(CORPUS.length);
      before.close();

      const words = wordTokenizer();
      const after = Quarry.open({ store: dir, config: chunking, components: { tokenizer: words } });
      const report = await after.addDocuments(CORPUS);
      expect(report).toMatchObject({ updated: CORPUS.length, unchanged: 0 });
      for (const c of after.store.iterateChunks()) {
        expect(c.tokenCount).toBe(words.count(c.text));
        expect(c.tokenCount).toBeLessThanOrEqual(16);
      }
      expect((await after.addDocuments(CORPUS)).unchanged).toBe(CORPUS.length);
      after.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

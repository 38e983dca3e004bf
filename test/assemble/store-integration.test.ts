/**
 * Context assembly over a real store: markdown files ingested by the library into SQLite, hits from real BM25
 * search, parents from the store, idf and analysis from the real lexical index. Segments must match the
 * stored document text and their chunks' stored offsets.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AssembleDeps, assembleContext, type ChunkSpan } from '../../src/assemble/context.js';
import { tokenizerFor } from '../../src/assemble/tokenizer.js';
import { buildPrompt, DEFAULT_PROMPT_TEMPLATE } from '../../src/generate/prompt.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import type { StoredChunk } from '../../src/types.js';
import { expectExactSegments } from './corpus.js';

const FILES: Record<string, string> = {
  'chunking.md': `# Chunking

## Chunk size

Chunks default to 256 tokens. Each chunk is an exact slice of the document text. Consecutive chunks of a section overlap by about 32 tokens. The overlap repeats whole sentences so no sentence is cut in half. Smaller chunks make retrieval sharper but give the model less context. Larger chunks carry more context but dilute the match.

## Parent sections

A parent section runs from one heading to the next. Retrieval finds small chunks; generation can use the whole section. Sections larger than the parent limit are split at block boundaries. The parent limit defaults to 1024 tokens.
`,
  'storage.md': `# Storage

## Durability

Every ingest batch is one SQLite transaction. A killed process leaves each document fully present or fully absent. The write-ahead log lets readers continue during a commit.
`,
};

let dir: string;
let quarry: Quarry;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-assemble-'));
  const docs = path.join(dir, 'docs');
  fs.mkdirSync(docs);
  for (const [name, text] of Object.entries(FILES)) fs.writeFileSync(path.join(docs, name), text);
  quarry = Quarry.open({
    store: path.join(dir, 'store'),
    config: { chunking: { maxTokens: 32, overlapTokens: 12 } },
  });
  const report = await quarry.ingest([docs]);
  expect(report.added).toBe(2);
});

afterAll(() => {
  quarry?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function deps(model: string): AssembleDeps {
  const tokenizer = tokenizerFor(model);
  const chunks: StoredChunk[] = [...quarry.store.iterateChunks()];
  return {
    countTokens: tokenizer.count,
    countMessages: tokenizer.countMessages,
    analyze: (text) => quarry.lexical.analyzer.analyze(text),
    idf: (term) => quarry.lexical.idf(term),
    getParentSection: (id) => quarry.getParentSection(id),
    sectionChunks: (docId, ordinal): ChunkSpan[] =>
      chunks.filter((c) => c.docId === docId && c.sectionOrdinal === ordinal),
  };
}

describe('assembleContext on a real SQLite store', () => {
  it('expands to the parent section, maps every segment to stored text and chunk offsets, and fits', async () => {
    const question = 'how much do consecutive chunks overlap and what is the default chunk size?';
    const { hits } = await quarry.search(question, { k: 10 });
    expect(hits.length).toBeGreaterThan(2);
    const d = deps('gpt-4o');
    const window = assembleContext(
      question,
      hits,
      { window: 4096, reservedOutput: 512, today: '2025-01-01' },
      d,
    );

    const texts = new Map<string, string>();
    const docText = (id: string): string => {
      if (!texts.has(id)) texts.set(id, quarry.getDocument(id)!.text);
      return texts.get(id)!;
    };
    const stored = quarry.store.getChunks(window.sources.flatMap((s) => s.segments.map((g) => g.chunkId)));
    expectExactSegments(window, docText, (id) => stored.get(id)?.start);

    const top = window.sources[0]!;
    expect(top.kind).toBe('parent');
    expect(top.sectionPath).toEqual(['Chunking', 'Chunk size']);
    expect(top.text).toContain('Consecutive chunks of a section overlap by about 32 tokens.');
    expect(top.date).toBe(hits[0]!.document.updated_at);
    const prompt = buildPrompt(DEFAULT_PROMPT_TEMPLATE, question, window);
    expect(tokenizerFor('gpt-4o').countMessages(prompt)).toBeLessThanOrEqual(4096 - 512);
    expect(prompt[1]!.content).toContain(`<source id="1" title="Chunking"`);
  });

  it('under a tight budget with an estimated tokenizer, keeps the best source, drops the rest and fits', async () => {
    const question =
      'what does the write-ahead log let readers do during a commit, and how large are chunks?';
    const { hits } = await quarry.search(question, { k: 10 });
    const d = deps('claude-sonnet-4-5');
    const opts = { reservedOutput: 256, parentExpansion: { enabled: false } };
    const roomy = assembleContext(question, hits, { ...opts, window: 4096 }, d);
    expect(roomy.sources.length).toBeGreaterThan(2);
    const limit = roomy.budget.promptOverhead + roomy.sources[0]!.tokens + 20;
    const tight = assembleContext(question, hits, { ...opts, window: limit + 256 }, d);
    expect(tight.sources[0]!.chunkIds).toEqual(roomy.sources[0]!.chunkIds);
    expect(tight.sources.length).toBeLessThan(roomy.sources.length);
    expect(tight.dropped.some((x) => x.reason === 'budget')).toBe(true);
    const prompt = buildPrompt(DEFAULT_PROMPT_TEMPLATE, question, tight);
    expect(tokenizerFor('claude-sonnet-4-5').countMessages(prompt)).toBeLessThanOrEqual(limit);
  });
});

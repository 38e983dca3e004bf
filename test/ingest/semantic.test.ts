/**
 * Semantic chunking on real components: the real chunker, parsers, BPE tokenizer and hashed n-gram sentence
 * vectors, and the whole ingest path through a real SQLite store.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { type ChunkOptions, chunkDocument } from '../../src/ingest/chunker.js';
import { parseFile } from '../../src/ingest/parse.js';
import { parseMarkdown } from '../../src/ingest/parsers/markdown.js';
import { parseText } from '../../src/ingest/parsers/text.js';
import {
  embedSentences,
  gapSimilarities,
  resolveSemanticChunking,
  snapToBreaks,
  topicBoundaries,
  topicSegmentStarts,
} from '../../src/ingest/semantic.js';
import { countTokens } from '../../src/ingest/tokens.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import type { ParsedDocument } from '../../src/types.js';
import { assertBlocksCovered, assertChunkInvariants } from './invariants.js';

const SAMPLE_DOCS = path.resolve(import.meta.dirname, '../../samples/docs');

const SOURDOUGH = [
  'A sourdough starter is a culture of wild yeast and lactic acid bacteria living in a paste of flour and water.',
  'Feed the starter with equal weights of flour and water every day until it doubles within six hours of feeding.',
  'A ripe starter smells pleasantly sour, and a spoonful of it floats in water because of the trapped gas.',
  'Mix the levain into the dough with flour, water and salt, then let the dough rest through the bulk fermentation.',
  'During bulk fermentation, stretch and fold the dough every half hour to build gluten strength without kneading.',
  'Shape the dough into a tight boule, dust it with rice flour and proof it overnight in a cold banneton.',
  'Bake the loaf in a preheated Dutch oven, lid on for twenty minutes so the steam lets the crust expand.',
].join(' ');

const TCP = [
  'TCP congestion control keeps a sender from overwhelming the network path between two hosts.',
  'The sender keeps a congestion window that limits how many unacknowledged segments may be in flight.',
  'In slow start the congestion window grows by one segment for every acknowledgment, doubling each round trip.',
  'When a segment is lost, the sender halves its congestion window and enters congestion avoidance.',
  'Congestion avoidance grows the window by roughly one segment per round trip, probing for spare bandwidth.',
  'CUBIC grows the congestion window as a cubic function of the time since the last loss event.',
  'BBR instead estimates the bottleneck bandwidth and round trip time and paces segments to match them.',
].join(' ');

/** Both topics in one paragraph of one section: only the words tell where one ends. */
const TWO_TOPICS = `# Notes\n\n${SOURDOUGH} ${TCP}\n`;

const BASE = { maxTokens: 200, overlapTokens: 32, parentMaxTokens: 1024, countTokens };

function chunk(doc: ParsedDocument, opts: ChunkOptions) {
  const out = chunkDocument(doc, opts);
  assertChunkInvariants(doc, out, opts);
  assertBlocksCovered(doc, out);
  return out;
}

const mentions = (text: string) => ({
  bread: /sourdough|starter/i.test(text),
  tcp: /congestion/i.test(text),
});

describe('two topics in one paragraph', () => {
  const doc = parseMarkdown(TWO_TOPICS);
  const topicChange = TWO_TOPICS.indexOf('TCP congestion');
  const breadEnd = TWO_TOPICS.indexOf(' TCP congestion');

  it('is cut at the topic change with semantic chunking on', () => {
    const out = chunk(doc, { ...BASE, semantic: { enabled: true } });
    expect(out.chunks.map((c) => [c.start, c.end])).toEqual([
      [0, breadEnd],
      [topicChange, TWO_TOPICS.trimEnd().length],
    ]);
    // No overlap across the topic boundary: the second chunk starts with the new topic, not the old one.
    expect(out.chunks[1]!.text.startsWith('TCP congestion control')).toBe(true);
    for (const c of out.chunks) expect(mentions(c.text)).not.toEqual({ bread: true, tcp: true });
  });

  it('is not cut there with semantic chunking off (the budget decides, overlap repeats across it)', () => {
    const out = chunk(doc, BASE);
    expect(out.chunks.length).toBe(2);
    expect(out.chunks.some((c) => c.start === topicChange || c.end === breadEnd)).toBe(false);
    expect(mentions(out.chunks[0]!.text)).toEqual({ bread: true, tcp: true });
  });

  it('still enforces the budget inside each topic segment, with overlap inside a segment', () => {
    const out = chunk(doc, { ...BASE, maxTokens: 64, overlapTokens: 32, semantic: { enabled: true } });
    expect(out.chunks.length).toBeGreaterThan(4);
    // The topic change is a chunk boundary even though the packer could have joined across it.
    expect(out.chunks.some((c) => c.end === breadEnd)).toBe(true);
    expect(out.chunks.some((c) => c.start === topicChange)).toBe(true);
    for (const c of out.chunks) expect(mentions(c.text)).not.toEqual({ bread: true, tcp: true });
    // Overlap is still used within a topic: some chunk starts before the previous one ends.
    expect(out.chunks.some((c, i) => i > 0 && c.start < out.chunks[i - 1]!.end)).toBe(true);
  });

  it('leaves a section that fits the budget whole: a heading-delimited section is the author’s unit', () => {
    const out = chunk(doc, { ...BASE, maxTokens: 400, semantic: { enabled: true } });
    expect(out.chunks.map((c) => c.text)).toEqual([TWO_TOPICS.trim()]);
  });

  it('never crosses a section: a topic change that coincides with a heading gives the same chunks either way', () => {
    const md = `# Bread\n\n${SOURDOUGH}\n\n# Networks\n\n${TCP}\n`;
    const sectioned = parseMarkdown(md);
    const on = chunk(sectioned, { ...BASE, maxTokens: 64, semantic: { enabled: true } });
    for (const c of on.chunks) expect(mentions(c.text)).not.toEqual({ bread: true, tcp: true });
    expect(new Set(on.chunks.map((c) => c.section))).toEqual(new Set([0, 1]));
  });

  it('uses a plugged-in sentence embedder instead of the built-in one', () => {
    // An embedder that puts the first three sentences on one axis and the rest on another.
    const sentences = [...SOURDOUGH.matchAll(/[^.]+\./g)].map((m) => m[0].trim());
    const text = `${sentences.join(' ')}\n`;
    let calls = 0;
    const firstHalf = (s: string) => sentences.indexOf(s) < 3;
    const embed = (texts: readonly string[]) => {
      calls++;
      return texts.map((t) => Float32Array.from(firstHalf(t) ? [1, 0] : [0, 1]));
    };
    const out = chunk(parseText(text), {
      ...BASE,
      maxTokens: 120,
      semantic: { enabled: true, minTokens: 8 },
      embedSentences: embed,
    });
    expect(calls).toBeGreaterThan(0);
    expect(out.chunks[0]!.text).toBe(sentences.slice(0, 3).join(' '));
    expect(out.chunks[1]!.start).toBe(text.indexOf(sentences[3]!));
  });
});

describe('boundary rule', () => {
  it('is relative to the section: the same dip is found at any similarity level, a flat section has none', () => {
    expect(topicBoundaries([0.5, 0.5, 0.1, 0.5, 0.5], 1)).toEqual([2]);
    expect(topicBoundaries([0.95, 0.95, 0.8, 0.95, 0.95], 1)).toEqual([2]);
    expect(topicBoundaries([0.3, 0.3, 0.3, 0.3], 0)).toEqual([]);
    // A larger k keeps only sharper dips.
    const sims = [0.6, 0.4, 0.6, 0.6, 0.1, 0.6, 0.6];
    expect(topicBoundaries(sims, 0.5)).toEqual([1, 4]);
    expect(topicBoundaries(sims, 1.5)).toEqual([4]);
  });

  it('smooths over a window: one off-topic sentence in a topic is not a boundary with window 2', () => {
    const v = (x: number) => Float32Array.from([Math.cos(x), Math.sin(x)]);
    const vectors = [v(0), v(0), v(0), v(1.4), v(0), v(0), v(1.5), v(1.5), v(1.5), v(1.5)];
    // Unsmoothed, the aside at index 3 makes a boundary of its own besides the real change at gap 5.
    expect(topicBoundaries(gapSimilarities(vectors, 1), 1)).toEqual([2, 5]);
    expect(topicBoundaries(gapSimilarities(vectors, 2), 1)).toEqual([5]);
  });

  it('moves a boundary inside a paragraph onto an adjacent paragraph break', () => {
    expect(snapToBreaks([3], [0.5, 0.5, 0.3, 0.2, 0.4], [false, false, true, false, true])).toEqual([2]);
    expect(snapToBreaks([3], [0.5, 0.5, 0.4, 0.2, 0.3], [false, false, true, false, true])).toEqual([4]);
    expect(snapToBreaks([3], [0.5, 0.5, 0.4, 0.2, 0.3], [])).toEqual([3]);
  });

  it('merges a segment under minTokens across its weaker boundary', () => {
    // Three topics; the middle one is two short sentences. Its boundary to the third topic is the weaker one
    // (the middle sentences lean towards the third), so it joins the third segment.
    const texts = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const tokens = [20, 20, 20, 3, 3, 20, 20];
    const angle = [0, 0, 0, 1.7, 1.7, 3, 3];
    const embed = () => angle.map((x) => Float32Array.from([Math.cos(x), Math.sin(x)]));
    const config = resolveSemanticChunking({ enabled: true, threshold: 0, window: 1, minTokens: 0 });
    expect(topicSegmentStarts(texts, tokens, config, embed)).toEqual([3, 5]);
    expect(topicSegmentStarts(texts, tokens, { ...config, minTokens: 10 }, embed)).toEqual([3]);
    expect(topicSegmentStarts(texts, tokens, { ...config, minTokens: 1000 }, embed)).toEqual([]);
  });

  it('gives sentences of one topic more similar vectors than sentences of different topics', () => {
    const sentences = [...`${SOURDOUGH} ${TCP}`.matchAll(/[^.]+\./g)].map((m) => m[0].trim());
    const vectors = embedSentences(sentences);
    const sims = gapSimilarities(vectors, 2);
    const change = 6; // the gap after the seventh (last bread) sentence
    expect(Math.min(...sims)).toBe(sims[change]);
    for (const v of vectors) expect(Math.abs(Math.hypot(...v) - 1)).toBeLessThan(1e-4);
  });
});

describe('options', () => {
  it('rejects invalid semantic options with INVALID_ARGUMENT', () => {
    expect(() =>
      chunkDocument(parseText(TWO_TOPICS), { ...BASE, semantic: { enabled: true, threshold: -1 } }),
    ).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    const bad = () => [new Float32Array(2)];
    expect(() =>
      chunkDocument(parseMarkdown(TWO_TOPICS), { ...BASE, semantic: { enabled: true }, embedSentences: bad }),
    ).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('is absent from the default configuration, so stored documents keep their change fingerprints', () => {
    expect(resolveConfig({}).chunking).toEqual({ maxTokens: 256, overlapTokens: 32, parentMaxTokens: 1024 });
    expect(resolveConfig({ chunking: { semantic: { enabled: true } } }).chunking.semantic).toEqual({
      enabled: true,
      threshold: 1,
      window: 2,
      minTokens: 32,
    });
    expect(() => resolveConfig({ chunking: { semantic: { window: 0 } } })).toThrowError(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
  });
});

// ---------------------------------------------------------------------------------------------------------

async function sampleDocs(): Promise<Array<{ name: string; doc: ParsedDocument }>> {
  const out: Array<{ name: string; doc: ParsedDocument }> = [];
  for (const name of fs.readdirSync(SAMPLE_DOCS).sort()) {
    const file = path.join(SAMPLE_DOCS, name);
    const parsed = await parseFile(file, fs.readFileSync(file), { maxBytes: 1e8 });
    if (parsed.kind === 'document') out.push({ name, doc: parsed.doc });
  }
  return out;
}

/**
 * Digests of the chunker's output on samples/docs before semantic chunking existed (same files, parsers and
 * tokenizer). If the samples or parsers change on purpose, recompute them with semantic chunking absent.
 */
const STRUCTURAL = [
  {
    opts: { maxTokens: 256, overlapTokens: 32, parentMaxTokens: 1024 },
    chunks: 149,
    sha256: 'da83f27915cebc4b80595b35bc31867efecd9f6778192f5a6c5f76db4169a929',
  },
  {
    opts: { maxTokens: 64, overlapTokens: 16, parentMaxTokens: 256 },
    chunks: 376,
    sha256: '82ee3cda1a5326631a410f613c00f32e0b440c472c1ec6c7588b5d52e32e95bc',
  },
];

describe('sample documents', () => {
  it('disabled (absent, or enabled: false with any settings) gives byte-identical chunks to structural chunking', async () => {
    const docs = await sampleDocs();
    for (const { opts, chunks, sha256 } of STRUCTURAL) {
      for (const semantic of [
        undefined,
        { enabled: false },
        { enabled: false, threshold: 0, minTokens: 0 },
      ]) {
        const h = createHash('sha256');
        let n = 0;
        for (const { name, doc } of docs) {
          const out = chunkDocument(doc, { ...opts, countTokens, ...(semantic ? { semantic } : {}) });
          n += out.chunks.length;
          h.update(JSON.stringify([name, out]));
        }
        expect({ n, digest: h.digest('hex') }).toEqual({ n: chunks, digest: sha256 });
      }
    }
  });

  it('keeps every chunk invariant with semantic chunking on, and actually changes some cuts', async () => {
    const docs = await sampleDocs();
    let changed = 0;
    for (const cfg of [
      { maxTokens: 256, overlapTokens: 32, parentMaxTokens: 1024 },
      { maxTokens: 64, overlapTokens: 16, parentMaxTokens: 256 },
      { maxTokens: 16, overlapTokens: 8, parentMaxTokens: 64 },
    ]) {
      for (const { name, doc } of docs) {
        const opts = { ...cfg, countTokens, semantic: { enabled: true } };
        const on = chunkDocument(doc, opts);
        try {
          assertChunkInvariants(doc, on, opts);
          assertBlocksCovered(doc, on);
        } catch (e) {
          throw new Error(`${name} ${JSON.stringify(cfg)}: ${e}`);
        }
        const off = chunkDocument(doc, { ...cfg, countTokens });
        expect(on.sections).toEqual(off.sections);
        if (JSON.stringify(on.chunks) !== JSON.stringify(off.chunks)) changed++;
      }
    }
    expect(changed).toBeGreaterThan(0);
  });

  it('starts glossary chunks at entries, not at a short trailing sentence of the previous entry', async () => {
    const glossary = (await sampleDocs()).find((d) => d.name === 'glossary.txt')!.doc;
    const out = chunk(glossary, { ...BASE, maxTokens: 256, semantic: { enabled: true } });
    const tail = glossary.text.indexOf("Quarry's default is 0.4.");
    expect(out.chunks.some((c) => c.start === tail)).toBe(false);
    expect(out.chunks.some((c) => c.text.startsWith('BEIR\n'))).toBe(true);
  });
});

describe('property: random two-vocabulary documents', () => {
  const BREAD = ['flour', 'dough', 'starter', 'crust', 'levain', 'oven', 'proof', 'yeast', 'loaf', 'rye'];
  const NET = ['packet', 'window', 'segment', 'latency', 'router', 'socket', 'ack', 'cubic', 'loss', 'mtu'];
  const sentence = fc
    .tuple(
      fc.boolean(),
      fc.array(fc.nat(9), { minLength: 1, maxLength: 14 }),
      fc.constantFrom('.', '!', '?', ''),
    )
    .map(([bread, ids, end]) => `${ids.map((i) => (bread ? BREAD : NET)[i]).join(' ')}${end}`);
  const block = fc.tuple(
    fc.constantFrom('', '# ', '## ', '- ', '> '),
    fc.array(sentence, { minLength: 1, maxLength: 12 }),
    fc.constantFrom(' ', '\n', '  '),
  );
  const markdown = fc
    .array(block, { minLength: 1, maxLength: 10 })
    .map((blocks) => blocks.map(([lead, s, join]) => `${lead}${s.join(join)}`).join('\n\n'));

  it('keeps every invariant for any settings', () => {
    fc.assert(
      fc.property(
        markdown,
        fc.constantFrom(8, 16, 32, 64),
        fc.nat(40),
        fc.record({
          threshold: fc.double({ min: 0, max: 5, noNaN: true }),
          window: fc.integer({ min: 1, max: 4 }),
          minTokens: fc.nat(80),
        }),
        (md, maxTokens, overlapTokens, semantic) => {
          const doc = parseMarkdown(md);
          const opts = {
            maxTokens,
            overlapTokens,
            parentMaxTokens: maxTokens * 3,
            countTokens,
            semantic: { enabled: true, ...semantic },
          };
          const out = chunkDocument(doc, opts);
          assertChunkInvariants(doc, out, opts);
          assertBlocksCovered(doc, out);
        },
      ),
      { numRuns: 150, seed: 20240611 },
    );
  });
});

describe('ingest', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('stores topic-cut chunks when the configuration enables it, and re-ingest is a no-op', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-semantic-'));
    dirs.push(root);
    const docs = path.join(root, 'docs');
    fs.mkdirSync(docs);
    fs.writeFileSync(path.join(docs, 'notes.md'), TWO_TOPICS);
    const chunking = { maxTokens: 200, semantic: { enabled: true } };
    const q = Quarry.open({ store: path.join(root, 'store'), config: { chunking } });
    try {
      const report = await q.ingest([docs]);
      expect(report.added).toBe(1);
      const { hits } = await q.search('congestion window slow start', { k: 1 });
      expect(hits[0]!.chunk.text.startsWith('TCP congestion control')).toBe(true);
      expect(hits[0]!.chunk.text).not.toMatch(/sourdough|starter/);
      expect((await q.ingest([docs])).unchanged).toBe(1);
    } finally {
      q.close();
    }
    // Turning it off is a change of chunking: the document is re-chunked, and the topics mix again.
    const off = Quarry.open({ store: path.join(root, 'store'), config: { chunking: { maxTokens: 200 } } });
    try {
      expect((await off.ingest([docs])).updated).toBe(1);
      const { hits } = await off.search('sourdough congestion', { k: 10 });
      expect(hits.some((h) => mentions(h.chunk.text).bread && mentions(h.chunk.text).tcp)).toBe(true);
    } finally {
      off.close();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/embed/local/linalg.js';
import { type ChunkOptions, chunkDocument } from '../../src/ingest/chunker.js';
import { parseMarkdown } from '../../src/ingest/parsers/markdown.js';
import { parseText } from '../../src/ingest/parsers/text.js';
import { countTokens } from '../../src/ingest/tokens.js';
import type { Block, ParsedDocument } from '../../src/types.js';
import { assertBlocksCovered, assertChunkInvariants } from './invariants.js';

/** A counter whose arithmetic is easy to follow in expectations: one token per whitespace-separated word. */
const words = (s: string) => s.split(/\s+/).filter(Boolean).length;

function run(doc: ParsedDocument, opts: Partial<ChunkOptions> & { maxTokens: number }) {
  const full: ChunkOptions = { overlapTokens: 0, parentMaxTokens: 10_000, countTokens: words, ...opts };
  const out = chunkDocument(doc, full);
  assertChunkInvariants(doc, out, full);
  assertBlocksCovered(doc, out);
  return {
    out,
    sections: out.sections.map((s) => ({ path: s.path, text: doc.text.slice(s.start, s.end) })),
    chunks: out.chunks.map((c) => [c.section, c.text] as const),
  };
}

const MD =
  '# A\n\nOne two three. Four five six.\n\n' +
  'Seven eight nine ten eleven twelve thirteen fourteen. Fifteen sixteen.\n\nShort.\n';

describe('sections', () => {
  it('follows the heading hierarchy, keeps the preamble and skips empty sections', () => {
    const md =
      '\n\nPreamble text.\n\n# One\n\nBody one.\n\n## Two\n\n### Three\n\nDeep.\n\n## Four\n\nBody four.\n\n# Five\n';
    const { sections } = run(parseMarkdown(md), { maxTokens: 50 });
    expect(sections).toEqual([
      { path: [], text: 'Preamble text.' },
      { path: ['One'], text: '# One\n\nBody one.' },
      { path: ['One', 'Two'], text: '## Two' },
      { path: ['One', 'Two', 'Three'], text: '### Three\n\nDeep.' },
      { path: ['One', 'Four'], text: '## Four\n\nBody four.' },
      { path: ['Five'], text: '# Five' },
    ]);
  });

  it('treats a document without blocks as one section', () => {
    const doc: ParsedDocument = { text: '  just text  ', blocks: [] };
    const { sections, chunks } = run(doc, { maxTokens: 10 });
    expect(sections).toEqual([{ path: [], text: 'just text' }]);
    expect(chunks).toEqual([[0, 'just text']]);
  });

  it('splits a section over parentMaxTokens at block boundaries, keeping its path', () => {
    const { sections, chunks } = run(parseMarkdown(MD), { maxTokens: 8, parentMaxTokens: 10 });
    expect(sections).toEqual([
      { path: ['A'], text: '# A\n\nOne two three. Four five six.' },
      { path: ['A'], text: 'Seven eight nine ten eleven twelve thirteen fourteen. Fifteen sixteen.' },
      { path: ['A'], text: 'Short.' },
    ]);
    expect(chunks).toEqual([
      [0, '# A\n\nOne two three. Four five six.'],
      [1, 'Seven eight nine ten eleven twelve thirteen fourteen.'],
      [1, 'Fifteen sixteen.'],
      [2, 'Short.'],
    ]);
  });

  it('raises parentMaxTokens to maxTokens instead of producing parents smaller than a chunk', () => {
    const { out } = run(parseMarkdown(MD), { maxTokens: 8, parentMaxTokens: 2 });
    for (const s of out.sections)
      expect(words(parseMarkdown(MD).text.slice(s.start, s.end))).toBeLessThanOrEqual(8);
  });
});

describe('packing and splitting', () => {
  it('packs whole blocks, splits an oversized paragraph into sentences, and keeps the heading with content', () => {
    const { chunks } = run(parseMarkdown(MD), { maxTokens: 8 });
    expect(chunks).toEqual([
      [0, '# A\n\nOne two three.'],
      [0, 'Four five six.'],
      [0, 'Seven eight nine ten eleven twelve thirteen fourteen.'],
      [0, 'Fifteen sixteen.\n\nShort.'],
    ]);
  });

  it('keeps a section that fits in one chunk whole', () => {
    const { chunks } = run(parseMarkdown(MD), { maxTokens: 19 });
    expect(chunks).toEqual([[0, MD.trim()]]);
  });

  it('splits a sentence over the budget at whitespace', () => {
    const doc = parseText('a b c d e f g h i j k');
    const { chunks } = run(doc, { maxTokens: 4 });
    expect(chunks).toEqual([
      [0, 'a b c d'],
      [0, 'e f g h'],
      [0, 'i j k'],
    ]);
  });

  it('splits a word over the budget by characters without breaking surrogate pairs', () => {
    const chars = (s: string) => s.length;
    const doc = parseText('abcdefghij 😀😀😀');
    const out = chunkDocument(doc, {
      maxTokens: 4,
      overlapTokens: 0,
      parentMaxTokens: 100,
      countTokens: chars,
    });
    assertChunkInvariants(doc, out, { maxTokens: 4, countTokens: chars });
    expect(out.chunks.map((c) => c.text)).toEqual(['abcd', 'efgh', 'ij', '😀😀', '😀']);
  });

  it('handles a megabyte-long token-dense word with the real tokenizer, quickly', () => {
    let seed = 7;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    let blob = '';
    for (let i = 0; i < 1_000_000; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      blob += alphabet[seed % 64];
    }
    const doc = parseText(`Attachment:\n\n${blob}\n`);
    const opts = { maxTokens: 256, overlapTokens: 32, parentMaxTokens: 1024, countTokens };
    const started = performance.now();
    const out = chunkDocument(doc, opts);
    const ms = performance.now() - started;
    assertChunkInvariants(doc, out, opts);
    expect(out.chunks.length).toBeGreaterThan(500);
    expect(ms).toBeLessThan(30_000);
  });
});

describe('overlap', () => {
  it('repeats trailing whole sentences of the previous chunk within a section', () => {
    const { chunks } = run(parseMarkdown(MD), { maxTokens: 8, overlapTokens: 3 });
    expect(chunks).toEqual([
      [0, '# A\n\nOne two three.'],
      // "One two three." (3 tokens) is repeated; the heading line is never an overlap candidate here.
      [0, 'One two three. Four five six.'],
      // An 8-token sentence leaves no room for overlap.
      [0, 'Seven eight nine ten eleven twelve thirteen fourteen.'],
      // The previous chunk is a single sentence: repeating all of it is not overlap, it is duplication.
      [0, 'Fifteen sixteen.\n\nShort.'],
    ]);
  });

  it('never overlaps across sections and takes as many whole sentences as fit', () => {
    const text = '# S\n\nS1 a. S2 b b. S3 c c c. S4 d. S5 e e e e e e.\n\n# T\n\nT1 t t.\n';
    const { chunks } = run(parseMarkdown(text), { maxTokens: 10, overlapTokens: 4 });
    expect(chunks).toEqual([
      [0, '# S\n\nS1 a. S2 b b.'],
      // "S2 b b." (3) fits the 4-token overlap; adding "S1 a." (2 more) would not.
      [0, 'S2 b b. S3 c c c. S4 d.'],
      [0, 'S4 d. S5 e e e e e e.'],
      [1, '# T\n\nT1 t t.'],
    ]);
  });

  it('keeps a heading with the start of an over-long first sentence', () => {
    const text = '# T\n\nT1 t t t t t t t t t t t t t t t t t t.\n';
    const { chunks } = run(parseMarkdown(text), { maxTokens: 10 });
    expect(chunks[0]).toEqual([0, '# T\n\nT1 t t t t t t']);
    expect(chunks.map(([, t]) => t).join(' ')).toBe('# T\n\nT1 t t t t t t t t t t t t t t t t t t.');
  });

  it('clamps overlap to half the budget', () => {
    const doc = parseText('One. Two. Three. Four. Five. Six. Seven. Eight. Nine. Ten.');
    const { chunks } = run(doc, { maxTokens: 4, overlapTokens: 100 });
    for (const [, text] of chunks.slice(1)) {
      // At most 2 of the 4 tokens can be repeated, so each chunk brings at least 2 new ones.
      expect(words(text)).toBeGreaterThanOrEqual(3);
    }
    expect(chunks[0]).toEqual([0, 'One. Two. Three. Four.']);
    expect(chunks[1]).toEqual([0, 'Three. Four. Five. Six.']);
  });
});

describe('options', () => {
  it('rejects a budget too small to hold any character', () => {
    expect(() =>
      chunkDocument(parseText('x'), { maxTokens: 2, overlapTokens: 0, parentMaxTokens: 10, countTokens }),
    ).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

// ---------------------------------------------------------------------------------------------------------
// Property-style: random Markdown (and random, even malformed, block lists) through the real tokenizer.

function mulberry32(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

const VOCAB = [
  'alpha',
  'beta',
  'quarry',
  'index',
  'token',
  'chunk',
  'retrieval',
  'section',
  'the',
  'a',
  'of',
  'to',
  'and',
  'naïve',
  'café',
  'x',
  'I/O',
  '42',
  '3.14',
  'e.g.',
  'Dr.',
  '日本語',
  '検索する',
  '文書',
  '😀',
  '👩‍💻',
  'Ελληνικά',
  'Привет',
  '<|endoftext|>',
  '`code`',
  '**bold**',
  '[link](http://x.y)',
];

function generateMarkdown(r: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const wordsOf = (n: number) =>
    Array.from({ length: n }, () => pick(VOCAB)).join(pick([' ', ' ', ' ', '  ', '\t']));
  const sentence = () => wordsOf(int(1, 25)) + pick(['.', '.', '?', '!', '。', '', ';']);
  const paragraph = () => Array.from({ length: int(1, 10) }, sentence).join(pick([' ', ' ', '\n', '']));
  const parts: string[] = [];
  if (r() < 0.3) parts.push(`---\ntitle: ${wordsOf(3)}\ntags: [${wordsOf(2).replace(/\s+/g, ', ')}]\n---`);
  const n = int(0, 25);
  for (let i = 0; i < n; i++) {
    const kind = r();
    if (kind < 0.2) parts.push(`${'#'.repeat(int(1, 6))} ${r() < 0.1 ? '' : wordsOf(int(1, 5))}`);
    else if (kind < 0.25) parts.push(`${wordsOf(int(1, 4))}\n${pick(['===', '---'])}`);
    else if (kind < 0.5) parts.push(paragraph());
    else if (kind < 0.58) parts.push(wordsOf(int(50, 300)));
    else if (kind < 0.62) parts.push(pick(['x', 'ab', '日本', '😀']).repeat(int(20, 600)));
    else if (kind < 0.72) {
      parts.push(
        Array.from(
          { length: int(1, 8) },
          (_, k) => `${k % 3 === 2 ? '  ' : ''}${pick(['-', '*', '1.'])} ${sentence()}`,
        ).join('\n'),
      );
    } else if (kind < 0.8)
      parts.push(`\`\`\`${pick(['', 'js', 'sh'])}\n${paragraph()}\n\n${paragraph()}\n\`\`\``);
    else if (kind < 0.85) parts.push(`> ${paragraph()}`);
    else if (kind < 0.9) parts.push(`| a | b |\n|---|---|\n| ${wordsOf(2)} | ${wordsOf(3)} |`);
    else if (kind < 0.93) parts.push(pick(['***', '<!-- comment -->', '[ref]: http://example.com']));
    else parts.push(' \t ');
  }
  return (
    (r() < 0.2 ? '\n \n' : '') +
    parts.join(pick(['\n\n', '\n\n', '\n', '\n\n\n \n'])) +
    (r() < 0.5 ? '\n' : '')
  );
}

describe('property: random markdown', () => {
  it('keeps every invariant over 300 random documents and configurations', () => {
    const r = mulberry32(20240601);
    for (let iter = 0; iter < 300; iter++) {
      const md = generateMarkdown(r);
      const doc = parseMarkdown(md);
      const maxTokens = [4, 5, 8, 16, 32, 64, 256][Math.floor(r() * 7)]!;
      const opts: ChunkOptions = {
        maxTokens,
        overlapTokens: Math.floor(r() * maxTokens * 1.5),
        parentMaxTokens: Math.max(1, Math.floor(maxTokens * (0.5 + r() * 6))),
        countTokens,
      };
      try {
        const out = chunkDocument(doc, opts);
        assertChunkInvariants(doc, out, opts);
        assertBlocksCovered(doc, out);
        const parentMax = Math.max(opts.parentMaxTokens, maxTokens);
        for (const s of out.sections)
          expect(countTokens(doc.text.slice(s.start, s.end))).toBeLessThanOrEqual(parentMax);
        // Every non-whitespace character after the front matter is in some chunk.
        const firstBlock = doc.blocks[0]?.start ?? 0;
        const covered = new Uint8Array(md.length);
        for (const c of out.chunks) covered.fill(1, c.start, c.end);
        for (let p = firstBlock; p < md.length; p++) {
          if (!covered[p] && /\S/.test(md[p]!))
            throw new Error(`char ${p} ${JSON.stringify(md[p])} not in any chunk`);
        }
      } catch (e) {
        throw new Error(
          `iteration ${iter} ${JSON.stringify(opts, (k, v) => (k === 'countTokens' ? undefined : v))}\n${md}\n${e}`,
        );
      }
    }
  });

  it('survives arbitrary (overlapping, unsorted, out-of-range) block lists', () => {
    const r = mulberry32(99);
    const kinds: Block['kind'][] = ['heading', 'paragraph', 'list', 'code', 'page'];
    for (let iter = 0; iter < 200; iter++) {
      const text = generateMarkdown(r);
      const blocks: Block[] = Array.from({ length: Math.floor(r() * 12) }, () => {
        const a = Math.floor(r() * (text.length + 20)) - 10;
        const b = a + Math.floor(r() * 200) - 20;
        const kind = kinds[Math.floor(r() * kinds.length)]!;
        return kind === 'heading'
          ? { kind, level: Math.floor(r() * 8), ...(r() < 0.5 ? { heading: 'H' } : {}), start: a, end: b }
          : { kind, start: a, end: b };
      });
      const doc: ParsedDocument = { text, blocks };
      const opts = { maxTokens: 16, overlapTokens: 4, parentMaxTokens: 40, countTokens };
      const out = chunkDocument(doc, opts);
      assertChunkInvariants(doc, out, opts);
    }
  });
});

describe('throughput', () => {
  it('chunks 5,000 passage-sized documents in well under a few seconds', () => {
    const r = mulberry32(5);
    const docs = Array.from({ length: 5000 }, () => {
      const n = 40 + Math.floor(r() * 200);
      const text = Array.from({ length: n }, () => VOCAB[Math.floor(r() * 8)]).join(' ') + '.';
      return parseText(text);
    });
    const opts = { maxTokens: 256, overlapTokens: 32, parentMaxTokens: 1024, countTokens };
    const started = performance.now();
    let chunks = 0;
    for (const d of docs) chunks += chunkDocument(d, opts).chunks.length;
    const ms = performance.now() - started;
    expect(chunks).toBeGreaterThanOrEqual(5000);
    expect(ms).toBeLessThan(10_000);
  });
});

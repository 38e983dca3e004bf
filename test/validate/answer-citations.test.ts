import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CitationStreamEvent,
  CitationStreamParser,
  parseAnswerCitations,
} from '../../src/validate/answer-citations.js';

const sourcesOf = (text: string) => parseAnswerCitations(text).markers.map((m) => m.sources);

describe('citation markers', () => {
  it('reads single, grouped, adjacent, ranged and full-width markers', () => {
    expect(sourcesOf('Chunks hold 256 tokens [1].')).toEqual([[1]]);
    expect(sourcesOf('Overlap is 32 tokens [1, 3].')).toEqual([[1, 3]]);
    expect(sourcesOf('Both say so [1][2].')).toEqual([[1], [2]]);
    expect(sourcesOf('All three agree [1-3].')).toEqual([[1, 2, 3]]);
    expect(sourcesOf('All three agree [2–4].')).toEqual([[2, 3, 4]]);
    expect(sourcesOf('Mixed forms [1, 3-4; 6].')).toEqual([[1, 3, 4, 6]]);
    expect(sourcesOf('快照会在启动时重建【2】。')).toEqual([[2]]);
    expect(sourcesOf('Repeats collapse [2, 2].')).toEqual([[2]]);
  });

  it('gives exact offsets of each marker', () => {
    const text = 'WAL mode is used [12]. Ids are never reused [3].';
    for (const m of parseAnswerCitations(text).markers) expect(text.slice(m.start, m.end)).toBe(m.raw);
  });

  it('ignores brackets that are not citations', () => {
    expect(sourcesOf('Check the box [x] before saving.')).toEqual([]);
    expect(sourcesOf('See [the guide](https://example.com/guide) for details.')).toEqual([]);
    expect(sourcesOf('See [1](https://example.com/one) for details.')).toEqual([]);
    expect(sourcesOf('As described in [the docs][1], snapshots are rebuilt.')).toEqual([]);
    expect(sourcesOf('Read `items[1]` and `[1, 2, 3]` as code.')).toEqual([]);
    expect(sourcesOf('Use ids = [1, 2] for the batch.')).toEqual([]);
    expect(sourcesOf('The name is items[1].name here.')).toEqual([]);
    expect(sourcesOf('Index zero [0] is never a source.')).toEqual([]);
    expect(sourcesOf('A wide span [1-99] is a number range.')).toEqual([]);
    expect(sourcesOf('Backwards [3-1] too.')).toEqual([]);
    expect(sourcesOf('```python\nbatch = ids[1]\nrows = [1, 2]\n[3]\n```\nDone.')).toEqual([]);
    expect(sourcesOf('[1]: https://example.com/reference')).toEqual([]);
  });

  it('still reads markers glued to a word or ending the answer', () => {
    expect(sourcesOf('The default is 256 tokens[1].')).toEqual([[1]]);
    expect(sourcesOf('The default is 256 tokens [1]')).toEqual([[1]]);
    expect(sourcesOf('Code `x[1]` then a claim [2].')).toEqual([[2]]);
  });
});

describe('sentences', () => {
  it('attaches markers before or after the full stop to their sentence', () => {
    const { sentences } = parseAnswerCitations(
      'Every batch is one transaction [1]. Ids are never reused.[2] [3] Snapshots are rebuilt on startup.',
    );
    expect(sentences.map((s) => s.sources)).toEqual([[1], [2, 3], []]);
    expect(sentences.map((s) => s.claim)).toEqual([
      'Every batch is one transaction.',
      'Ids are never reused.',
      'Snapshots are rebuilt on startup.',
    ]);
  });

  it('splits list items, labels headings and code, and keeps abbreviations inside a sentence', () => {
    const { sentences } = parseAnswerCitations(
      '## Summary\n- Chunks hold 256 tokens [1]\n- Parents hold up to 1024 tokens [2]\n\n```sh\nquarry ingest docs\n```\nSee e.g. the guide by Dr. Smith [3].',
    );
    expect(sentences.map((s) => [s.kind, s.claim, s.sources])).toEqual([
      ['heading', 'Summary', []],
      ['prose', 'Chunks hold 256 tokens', [1]],
      ['prose', 'Parents hold up to 1024 tokens', [2]],
      ['code', '```sh', []],
      ['code', 'quarry ingest docs ```', []],
      ['prose', 'See e.g. the guide by Dr. Smith.', [3]],
    ]);
  });

  it('gives sentence offsets into the answer text', () => {
    const text = '  First claim here [1].\n\nSecond claim here [2]. ';
    for (const s of parseAnswerCitations(text).sentences) expect(text.slice(s.start, s.end)).toBe(s.text);
  });
});

describe('streaming', () => {
  it('emits a marker split across deltas once it closes, and flags unknown sources mid-stream', () => {
    const p = new CitationStreamParser({ knownSources: [1, 2, 3] });
    expect(p.push('The default chunk size is 256 tokens [1')).toEqual([]);
    const events = p.push('2]. Overlap');
    const marker = events.find((e) => e.type === 'marker');
    expect(marker).toMatchObject({ type: 'marker', marker: { raw: '[12]', sources: [12] }, unknown: [12] });
    // The sentence is complete once the next one has begun.
    const sentence = events.find((e) => e.type === 'sentence');
    expect(sentence).toMatchObject({
      sentence: { claim: 'The default chunk size is 256 tokens.', sources: [12] },
    });
  });

  it('waits for the character after a marker before calling it a citation', () => {
    const p = new CitationStreamParser();
    expect(p.push('See [1]')).toEqual([]);
    expect(p.push('(https://example.com)').filter((e) => e.type === 'marker')).toEqual([]);
    const q = new CitationStreamParser({ knownSources: [1] });
    q.push('Ids are never reused [1]');
    expect(q.push('.').filter((e) => e.type === 'marker')).toMatchObject([{ unknown: [] }]);
  });

  it('does not end a sentence until the next word shows the full stop ended it', () => {
    const p = new CitationStreamParser();
    expect(p.push('Rebuilds take 4 s. ')).toEqual([]);
    expect(p.push('on a laptop. Then')).toMatchObject([
      { type: 'sentence', sentence: { text: 'Rebuilds take 4 s. on a laptop.' } },
    ]);
    expect(p.end()).toMatchObject([{ type: 'sentence', sentence: { text: 'Then' } }]);
  });

  const answers = [
    'Chunks hold 256 tokens [1]. Overlap is 32 tokens [1, 3]. See [the guide](https://x.org/a[1]) too.',
    '## Notes\n- Batches are atomic [2][4]\n- Ids are never reused【3】\n```js\nconst a = ids[1];\n```\nDone [1-3].',
    'Use `items[1]` or ids = [1, 2]; the store is SQLite [5]. Dr. Smith agrees [6]. tokens[7]. Fin',
  ];

  /** Markers and sentences in emission order (the interleaving of the two depends on the deltas). */
  function collect(chunks: string[]): { markers: CitationStreamEvent[]; sentences: CitationStreamEvent[] } {
    const p = new CitationStreamParser({ knownSources: [1, 2] });
    const events = [...chunks.flatMap((c) => p.push(c)), ...p.end()];
    return {
      markers: events.filter((e) => e.type === 'marker'),
      sentences: events.filter((e) => e.type === 'sentence'),
    };
  }

  it('gives the same events for any split of the text as for the whole text', () => {
    for (const text of answers) {
      const whole = collect([text]);
      fc.assert(
        fc.property(
          fc.uniqueArray(fc.integer({ min: 1, max: text.length - 1 }), { maxLength: 12 }),
          (cuts) => {
            const points = [0, ...cuts.sort((a, b) => a - b), text.length];
            const pieces = points.slice(1).map((end, i) => text.slice(points[i], end));
            expect(collect(pieces)).toEqual(whole);
          },
        ),
        { numRuns: 150 },
      );
    }
  });

  it('gives the same events when fed one character at a time', () => {
    for (const text of answers) expect(collect([...text])).toEqual(collect([text]));
  });
});

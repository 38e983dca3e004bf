import { describe, expect, it } from 'vitest';
import { QuarryError } from '../../src/errors.js';
import { NOT_ENOUGH_INFORMATION } from '../../src/generate/extractive.js';
import type { Citation } from '../../src/types.js';
import { answerConfidence, isAbstention, validateAnswer } from '../../src/validate/answer.js';
import { checkCitations } from '../../src/validate/citations.js';
import { chunk, chunkingDoc, contextMap, deps, docs, makeSource, storageDoc } from './fixtures.js';

const sources = [
  makeSource(1, storageDoc, [{ chunk: chunk(storageDoc, 'one transaction') }]),
  // Parent-style: two non-adjacent pieces of the chunking guide.
  makeSource(2, chunkingDoc, [
    { chunk: chunk(chunkingDoc, '256 tokens') },
    { chunk: chunk(chunkingDoc, 'whole section') },
  ]),
  makeSource(3, storageDoc, [
    { chunk: chunk(storageDoc, 'unchanged document') },
    { chunk: chunk(storageDoc, 'stale snapshot') },
  ]),
];

const SUPPORTED: [string, string, string, string] = [
  'Quarry writes every ingest batch in one transaction, so a killed process leaves each document fully present or fully absent [1].',
  'Consecutive chunks of a section overlap by 32 tokens [2].',
  'Context assembly can hand the model the whole section, up to 1024 tokens [2].',
  'A stale snapshot is rebuilt from the store on startup, in about 4 seconds for 100,000 chunks [3].',
];
const WRONG_NUMBER = 'Chunks hold at most 512 tokens [2].';
const DROPPED_NEGATION = 'Re-ingesting an unchanged document creates a new version [3].';
const UNKNOWN_SOURCE = 'Snapshots are compressed with zstd before they are written [5].';
const UNCITED = 'The HNSW graph is rebuilt nightly by a background maintenance job.';

function expectVerifiable(citations: Citation[]): void {
  expect(citations.length).toBeGreaterThan(0);
  for (const c of citations) {
    const doc = docs.find((d) => d.id === c.docId)!;
    expect(doc.text.slice(c.start, c.end)).toBe(c.quote);
    const ch = doc.chunks.find((x) => x.id === c.chunkId)!;
    expect(ch.text.slice(c.chunkStart, c.chunkEnd)).toBe(c.quote);
    expect(c.quote).not.toContain('…');
  }
  // The same check the extractive answerer's citations go through.
  expect(checkCitations(citations, contextMap())).toMatchObject({ ok: true, problems: [] });
}

describe('validateAnswer', () => {
  const mixed = [SUPPORTED[0], WRONG_NUMBER, SUPPORTED[1], DROPPED_NEGATION, UNKNOWN_SOURCE, UNCITED].join(
    ' ',
  );

  it('supports faithful sentences with exact citations and flags the rest, each for its reason', () => {
    const r = validateAnswer(mixed, sources, { minConfidence: 0 }, deps);
    expect(r.sentences.map((v) => v.status)).toEqual([
      'supported',
      'unsupported',
      'supported',
      'unsupported',
      'unsupported',
      'uncited',
    ]);
    expect(r.sentences[1]!.mismatches).toEqual([{ kind: 'number', value: '512' }]);
    expect(r.sentences[3]!.mismatches.map((m) => m.kind)).toEqual(['polarity']);
    expect(r.problems.map((p) => [p.kind, p.sentence, p.source])).toEqual([
      ['unsupported', 1, undefined],
      ['unsupported', 3, undefined],
      ['unknown-source', 4, 5],
      ['unsupported', 4, undefined],
      ['uncited', 5, undefined],
    ]);
    // Flag keeps the text as written.
    expect(r.text).toBe(mixed);
    expect(r.abstained).toBe(false);
    expectVerifiable(r.citations);
    expect(r.citations.map((c) => [c.marker, c.quote])).toEqual([
      [
        1,
        'Every ingest batch is written in one transaction, so a process killed during ingest leaves each document either fully present or fully absent.',
      ],
      [
        2,
        'Consecutive chunks of a section overlap by 32 tokens, so a sentence cut at a boundary is still retrievable in one piece.',
      ],
    ]);
  });

  it('cites the right chunk when a source joins pieces of several chunks', () => {
    const r = validateAnswer(SUPPORTED.join(' '), sources, {}, deps);
    expect(r.sentences.every((v) => v.status === 'supported')).toBe(true);
    expectVerifiable(r.citations);
    const parent = r.citations.find((c) => c.quote.includes('1024'))!;
    expect(parent.chunkId).toBe(chunk(chunkingDoc, 'whole section').id);
    const snapshot = r.citations.find((c) => c.quote.includes('100,000'))!;
    expect(snapshot.chunkId).toBe(chunk(storageDoc, 'stale snapshot').id);
  });

  it('removes unsupported sentences and markers of unknown sources under the remove policy', () => {
    const answer = [
      '## Ingest and chunking',
      `- ${SUPPORTED[0]}`,
      `- ${WRONG_NUMBER}`,
      `- ${SUPPORTED[1].replace('[2]', '[2][7]')}`,
      '',
      UNCITED,
    ].join('\n');
    const r = validateAnswer(answer, sources, { unsupportedPolicy: 'remove', minConfidence: 0 }, deps);
    expect(r.removedSentences).toBe(2);
    expect(r.removedMarkers).toBe(1);
    expect(r.text).toBe(['## Ingest and chunking', `- ${SUPPORTED[0]}`, `- ${SUPPORTED[1]}`].join('\n'));
    expect(r.sentences.filter((v) => v.removed).map((v) => v.sentence.index)).toEqual([2, 4]);
    expect(r.problems.map((p) => p.kind)).toEqual(['unsupported', 'unknown-source', 'uncited']);
    expectVerifiable(r.citations);
  });

  it('computes confidence from supported share, mean support and citation validity', () => {
    const r = validateAnswer(mixed, sources, { minConfidence: 0 }, deps);
    const checked = r.sentences.filter((v) => v.status !== 'not-checked' && v.status !== 'abstention');
    expect(r.confidenceParts.supportedShare).toBeCloseTo(2 / 6, 9);
    expect(r.confidenceParts.meanSupport).toBeCloseTo(
      checked.reduce((a, v) => a + v.support, 0) / checked.length,
      9,
    );
    expect(r.confidenceParts.citationValidity).toBeCloseTo(4 / 5, 9);
    expect(r.confidence).toBe(answerConfidence(r.confidenceParts, checked.length));

    const faithful = validateAnswer(SUPPORTED.join(' '), sources, {}, deps);
    expect(faithful.confidence).toBeGreaterThan(0.75);
    expect(faithful.confidence).toBeGreaterThan(r.confidence);
    // The same answer citing a source that was never in the context is worth less.
    const fabricated = validateAnswer(SUPPORTED.join(' ').replace('[3]', '[3][9]'), sources, {}, deps);
    expect(fabricated.confidence).toBeLessThan(faithful.confidence);
    expect(fabricated.confidenceParts.citationValidity).toBeCloseTo(4 / 5, 9);
  });

  it('abstains below the confidence threshold', () => {
    const poor = [WRONG_NUMBER, DROPPED_NEGATION, UNKNOWN_SOURCE, UNCITED, SUPPORTED[1]].join(' ');
    const r = validateAnswer(poor, sources, {}, deps);
    expect(r.confidence).toBeLessThan(0.4);
    expect(r).toMatchObject({
      abstained: true,
      abstainReason: 'low-confidence',
      text: NOT_ENOUGH_INFORMATION,
    });
    expect(r.citations).toEqual([]);
    // The verdicts stay available for the trace.
    expect(r.sentences).toHaveLength(5);
    const lenient = validateAnswer(poor, sources, { minConfidence: 0 }, deps);
    expect(lenient.abstained).toBe(false);
  });

  it('abstains when nothing survives the remove policy', () => {
    const r = validateAnswer(`${WRONG_NUMBER} ${UNCITED}`, sources, { unsupportedPolicy: 'remove' }, deps);
    expect(r).toMatchObject({ abstained: true, abstainReason: 'nothing-supported', removedSentences: 2 });
  });

  it('recognises the model saying it does not have enough information', () => {
    const said =
      "I don't have enough information in the provided sources to say how snapshots are compressed.";
    const r = validateAnswer(said, sources, {}, deps);
    expect(r).toMatchObject({ abstained: true, abstainReason: 'model', confidence: 0, text: said });
    expect(r.sentences[0]!.status).toBe('abstention');
    expect(r.problems).toEqual([]);

    for (const phrase of [
      NOT_ENOUGH_INFORMATION,
      'The provided context does not mention how snapshots are compressed.',
      'I cannot answer that from these documents.',
      'There is no information about compression in the sources.',
    ])
      expect(isAbstention(phrase)).toBe(true);
    expect(isAbstention('Quarry does not need a server and has enough memory for 100,000 chunks.')).toBe(
      false,
    );

    // Declining one part while answering another is an answer.
    const partial = `The sources do not mention compression. ${SUPPORTED[3]}`;
    const p = validateAnswer(partial, sources, {}, deps);
    expect(p.abstained).toBe(false);
    expect(p.sentences.map((v) => v.status)).toEqual(['abstention', 'supported']);
    expect(p.confidence).toBeGreaterThan(0.75);
  });

  it('reports uncited sentences without counting them when citations are not required', () => {
    const answer = `${SUPPORTED[0]} ${UNCITED}`;
    const strict = validateAnswer(answer, sources, {}, deps);
    const lenient = validateAnswer(answer, sources, { requireCitations: false }, deps);
    expect(strict.problems.map((p) => p.kind)).toEqual(['uncited']);
    expect(lenient.problems.map((p) => p.kind)).toEqual(['uncited']);
    expect(lenient.confidence).toBeGreaterThan(strict.confidence);
    expect(lenient.confidenceParts.supportedShare).toBe(1);
  });

  it('does not check connective text, headings or code', () => {
    const answer = [
      'Here is what I found:',
      '## Durability',
      SUPPORTED[0],
      '```sh',
      'quarry ingest samples/docs',
      '```',
      'Does that help?',
    ].join('\n');
    const r = validateAnswer(answer, sources, {}, deps);
    expect(r.sentences.map((v) => v.status)).toEqual([
      'not-checked',
      'not-checked',
      'supported',
      'not-checked',
      'not-checked',
      'not-checked',
    ]);
    expect(r.problems).toEqual([]);
  });

  it('rejects invalid options with INVALID_CONFIG', () => {
    expect(() => validateAnswer('x', sources, { minSupport: 2 }, deps)).toThrow(QuarryError);
    try {
      validateAnswer('x', sources, { unsupportedPolicy: 'drop' as 'remove' }, deps);
    } catch (e) {
      expect((e as QuarryError).code).toBe('INVALID_CONFIG');
    }
  });
});

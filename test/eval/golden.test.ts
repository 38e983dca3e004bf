/**
 * Golden-set loading: valid JSONL and JSON forms load with their defaults; invalid items fail with errors
 * naming the file, the line (or item) and the field; the committed docs/golden-set.schema.json is exactly
 * the schema the loader validates with, and a real JSON Schema validator (ajv) accepts and rejects the same
 * items. Also the deterministic held-out selection behind `--unanswerable`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import { corpusDocKey, goldenSetJsonSchema, loadGoldenSet } from '../../src/eval/golden.js';
import { isHeldOut, unanswerableQueries } from '../../src/eval/unanswerable.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-golden-test-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};

describe('loadGoldenSet', () => {
  it('loads JSONL with defaults and line-numbered ids', async () => {
    const f = write(
      'ok.jsonl',
      [
        JSON.stringify({ question: 'When does the ferry leave?', answers: ['07:00'], sources: ['ferry.md'] }),
        '',
        JSON.stringify({
          id: 'nm',
          question: 'What does parking cost?',
          answerable: false,
          tags: ['near-miss'],
        }),
      ].join('\n'),
    );
    const set = await loadGoldenSet(f);
    expect(set.name).toBe('ok');
    expect(set.items).toEqual([
      {
        id: 'q1',
        question: 'When does the ferry leave?',
        answers: ['07:00'],
        sources: ['ferry.md'],
        answerable: true,
        tags: [],
      },
      {
        id: 'nm',
        question: 'What does parking cost?',
        answers: [],
        sources: [],
        answerable: false,
        tags: ['near-miss'],
      },
    ]);
    expect(set.corpus).toBeUndefined();
  });

  it('loads the JSON object form and resolves its corpus relative to the file', async () => {
    const f = write('set.json', JSON.stringify({ corpus: 'docs', items: [{ question: 'Who?' }] }));
    const set = await loadGoldenSet(f);
    expect(set.corpus).toBe(path.join(dir, 'docs'));
    expect(set.items[0]?.id).toBe('q1');
  });

  it('names the line and the field of an invalid item', async () => {
    const f = write(
      'bad.jsonl',
      `${JSON.stringify({ question: 'fine?' })}\n${JSON.stringify({ question: 'x', answers: 'Paris' })}\n`,
    );
    await expect(loadGoldenSet(f)).rejects.toThrow(/bad\.jsonl:2: field "answers": .*array/);
    const g = write('unknown.jsonl', JSON.stringify({ question: 'x', answer: ['Paris'] }));
    await expect(loadGoldenSet(g)).rejects.toThrow(/unknown\.jsonl:1: .*answer/);
    const h = write('missing.jsonl', JSON.stringify({ answers: ['Paris'] }));
    await expect(loadGoldenSet(h)).rejects.toThrow(/missing\.jsonl:1: field "question"/);
    const i = write('contra.jsonl', JSON.stringify({ question: 'x?', answerable: false, answers: ['y'] }));
    await expect(loadGoldenSet(i)).rejects.toThrow(
      /contra\.jsonl:1: field "answers": an unanswerable question/,
    );
    const j = write('json.jsonl', '{"question": "x?"\n');
    await expect(loadGoldenSet(j)).rejects.toThrow(/json\.jsonl:1: malformed JSON/);
    const k = write('items.json', JSON.stringify([{ question: 'ok?' }, { question: '' }]));
    await expect(loadGoldenSet(k)).rejects.toThrow(/items\.json:item 2: field "question"/);
    const l = write(
      'dup.jsonl',
      `${JSON.stringify({ id: 'a', question: 'x?' })}\n${JSON.stringify({ id: 'a', question: 'y?' })}`,
    );
    await expect(loadGoldenSet(l)).rejects.toThrow(/duplicate item id "a"/);
    await expect(loadGoldenSet(write('empty.jsonl', '\n'))).rejects.toThrow(/no items/);
  });
});

describe('docs/golden-set.schema.json', () => {
  const file = path.resolve(import.meta.dirname, '../../docs/golden-set.schema.json');
  const committed = JSON.parse(fs.readFileSync(file, 'utf8'));

  it('is the schema the loader validates with (regenerate: node scripts/golden-schema.mjs)', () => {
    expect(committed).toEqual(goldenSetJsonSchema());
  });

  it('accepts and rejects what the loader does, under a real JSON Schema validator', () => {
    const validate = new Ajv2020.default({ strict: false }).compile(committed);
    expect(validate({ question: 'When?', answers: ['07:00'], sources: ['a.md'], tags: ['x'] })).toBe(true);
    expect(validate([{ question: 'When?' }])).toBe(true);
    expect(validate({ corpus: 'docs', items: [{ question: 'When?', answerable: false }] })).toBe(true);
    expect(validate({ question: 'When?', answers: 'Paris' })).toBe(false);
    expect(validate({ answers: ['x'] })).toBe(false);
    expect(validate({ question: 'When?', extra: 1 })).toBe(false);
  });
});

describe('documents as golden sets name them', () => {
  it('files by their path under the corpus, records by their id', () => {
    const root = path.join(dir, 'corpus');
    const file = path.join(root, 'sub', 'a.md');
    expect(corpusDocKey({ docId: file, source: file }, root)).toBe('sub/a.md');
    expect(corpusDocKey({ docId: 'rec-1', source: path.join(root, 'data.jsonl') }, root)).toBe('rec-1');
    expect(corpusDocKey({ docId: file, source: file }, file)).toBe('a.md');
  });
});

describe('--unanswerable selection', () => {
  it('holds out every 1/share-th document, the same on every run', () => {
    const picked = (share: number, n: number) =>
      Array.from({ length: n }, (_, i) => i).filter((i) => isHeldOut(i, share));
    expect(picked(0.1, 40)).toEqual([9, 19, 29, 39]);
    expect(picked(0.25, 12)).toEqual([3, 7, 11]);
    expect(picked(0.5, 6)).toEqual([1, 3, 5]);
  });

  it('a question is unanswerable when every relevant document was held out', () => {
    const qrels = new Map([
      ['q1', new Map([['d1', 1]])],
      [
        'q2',
        new Map([
          ['d1', 1],
          ['d2', 1],
        ]),
      ],
      [
        'q3',
        new Map([
          ['d2', 1],
          ['d1', 0],
        ]),
      ],
    ]);
    expect([...unanswerableQueries(qrels, new Set(['d1']))]).toEqual(['q1']);
  });
});

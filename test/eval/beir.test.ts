import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isQuarryError, type QuarryError } from '../../src/errors.js';
import { loadBeirDataset, readCorpus } from '../../src/eval/beir.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const SCIFACT = path.resolve(REPO_ROOT, '../shared/datasets/scifact');

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'quarry-beir-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Writes a dataset directory from a map of relative path → content. */
async function dataset(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(tmp, name);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), content);
  }
  await mkdir(dir, { recursive: true });
  return dir;
}

const jsonl = (...records: unknown[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

const CORPUS = jsonl(
  { _id: 'd1', title: 'One', text: 'first doc' },
  { _id: 'd2', title: 'Two', text: 'second doc', metadata: { year: 2020 } },
  { _id: 'd3', text: 'no title' },
);

/** Runs `fn` and returns the QuarryError it rejects with. */
async function datasetError(fn: () => Promise<unknown>): Promise<QuarryError> {
  try {
    await fn();
  } catch (e) {
    if (isQuarryError(e)) {
      expect(e.code).toBe('DATASET');
      return e;
    }
    throw e;
  }
  throw new Error('expected a DATASET error');
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('loadBeirDataset', () => {
  it('loads queries judged in the split, in file order, with qrels', async () => {
    const dir = await dataset('tiny', {
      'corpus.jsonl': CORPUS,
      'queries.jsonl': jsonl(
        { _id: 'q2', text: 'second query', metadata: { answers: ['x'] } },
        { _id: 'q9', text: 'not judged in test' },
        { _id: 'q1', text: 'first query' },
      ),
      'qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq2\td3\t2\n',
    });
    const ds = await loadBeirDataset(dir);
    expect(ds.name).toBe('tiny');
    expect(ds.split).toBe('test');
    expect(ds.dir).toBe(dir);
    expect(ds.corpusPath).toBe(path.join(dir, 'corpus.jsonl'));
    // File order (q2 before q1), q9 dropped: it has no judgment in this split.
    expect(ds.queries).toEqual([
      { id: 'q2', text: 'second query', metadata: { answers: ['x'] } },
      { id: 'q1', text: 'first query' },
    ]);
    expect(ds.qrels).toEqual(
      new Map([
        [
          'q1',
          new Map([
            ['d1', 1],
            ['d2', 0],
          ]),
        ],
        ['q2', new Map([['d3', 2]])],
      ]),
    );
  });

  it('tolerates CRLF line endings, a missing header, a BOM and blank lines', async () => {
    const dir = await dataset('crlf', {
      'corpus.jsonl': CORPUS.replaceAll('\n', '\r\n'),
      'queries.jsonl': '\uFEFF' + jsonl({ _id: 'q1', text: 'hello' }).replaceAll('\n', '\r\n') + '\r\n',
      'qrels/test.tsv': 'q1\td1\t1\r\nq1\td2\t2\r\n\r\n',
    });
    const ds = await loadBeirDataset(dir);
    expect(ds.queries).toEqual([{ id: 'q1', text: 'hello' }]);
    expect(ds.qrels.get('q1')).toEqual(
      new Map([
        ['d1', 1],
        ['d2', 2],
      ]),
    );
    const docs = await collect(readCorpus(ds.corpusPath));
    expect(docs.map((d) => d.text)).toEqual(['first doc', 'second doc', 'no title']);
  });

  it('prefers queries.<split>.jsonl over queries.jsonl', async () => {
    const dir = await dataset('splits', {
      'corpus.jsonl': CORPUS,
      'queries.jsonl': jsonl({ _id: 't1', text: 'test query' }, { _id: 'r1', text: 'stale train text' }),
      'queries.train.jsonl': jsonl({ _id: 'r1', text: 'train query' }, { _id: 'r2', text: 'another' }),
      'qrels/test.tsv': 'query-id\tcorpus-id\tscore\nt1\td1\t1\n',
      'qrels/train.tsv': 'query-id\tcorpus-id\tscore\nr2\td2\t1\nr1\td1\t1\n',
    });
    const train = await loadBeirDataset(dir, 'train');
    expect(train.split).toBe('train');
    expect(train.queries).toEqual([
      { id: 'r1', text: 'train query' },
      { id: 'r2', text: 'another' },
    ]);
    // The test split has no queries.test.jsonl, so it falls back to queries.jsonl.
    const test = await loadBeirDataset(dir);
    expect(test.queries).toEqual([{ id: 't1', text: 'test query' }]);
  });

  it('reports a missing directory', async () => {
    const e = await datasetError(() => loadBeirDataset(path.join(tmp, 'nope')));
    expect(e.message).toContain('does not exist');
    expect(e.message).toContain('nope');
  });

  it('reports a missing corpus.jsonl', async () => {
    const dir = await dataset('nocorpus', {
      'queries.jsonl': jsonl({ _id: 'q1', text: 'x' }),
      'qrels/test.tsv': 'q1\td1\t1\n',
    });
    const e = await datasetError(() => loadBeirDataset(dir));
    expect(e.message).toContain('corpus.jsonl');
    expect(e.details.file).toBe(path.join(dir, 'corpus.jsonl'));
  });

  it('reports a missing qrels split and lists the splits that exist', async () => {
    const dir = await dataset('nosplit', {
      'corpus.jsonl': CORPUS,
      'queries.jsonl': jsonl({ _id: 'q1', text: 'x' }),
      'qrels/train.tsv': 'q1\td1\t1\n',
      'qrels/dev.tsv': 'q1\td1\t1\n',
    });
    const e = await datasetError(() => loadBeirDataset(dir, 'test'));
    expect(e.message).toContain(path.join('qrels', 'test.tsv'));
    expect(e.message).toContain('available splits: dev, train');
    expect(e.details.splits).toEqual(['dev', 'train']);

    const bare = await dataset('noqrels', { 'corpus.jsonl': CORPUS, 'queries.jsonl': '' });
    expect((await datasetError(() => loadBeirDataset(bare))).message).toContain('no qrels/*.tsv');
  });

  it('reports a missing queries file', async () => {
    const dir = await dataset('noqueries', { 'corpus.jsonl': CORPUS, 'qrels/test.tsv': 'q1\td1\t1\n' });
    const e = await datasetError(() => loadBeirDataset(dir));
    expect(e.message).toContain('queries.test.jsonl');
    expect(e.message).toContain('queries.jsonl');
  });

  it('reports a malformed JSON line in the queries file with file and line', async () => {
    const dir = await dataset('badjson', {
      'corpus.jsonl': CORPUS,
      'queries.jsonl': jsonl({ _id: 'q1', text: 'ok' }) + '{"_id": "q2", "text": \n',
      'qrels/test.tsv': 'q1\td1\t1\n',
    });
    const e = await datasetError(() => loadBeirDataset(dir));
    expect(e.message).toContain(`${path.join(dir, 'queries.jsonl')}:2: malformed JSON`);
    expect(e.details).toMatchObject({ file: path.join(dir, 'queries.jsonl'), line: 2 });
  });

  it('reports qrels lines with the wrong column count', async () => {
    const dir = await dataset('badcols', {
      'corpus.jsonl': CORPUS,
      'queries.jsonl': jsonl({ _id: 'q1', text: 'x' }),
      // TREC-style 4-column line on line 3.
      'qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\t0\td2\t1\n',
    });
    const e = await datasetError(() => loadBeirDataset(dir));
    expect(e.message).toContain(`${path.join(dir, 'qrels', 'test.tsv')}:3: expected 3 tab-separated columns`);
    expect(e.details.line).toBe(3);
  });

  it('reports a non-numeric score', async () => {
    const dir = await dataset('badscore', {
      'corpus.jsonl': CORPUS,
      'queries.jsonl': jsonl({ _id: 'q1', text: 'x' }),
      'qrels/test.tsv': 'q1\td1\t1\r\nq1\td2\thigh\r\n',
    });
    const e = await datasetError(() => loadBeirDataset(dir));
    expect(e.message).toContain(`test.tsv:2: score "high" is not a number`);
  });

  it('reports judged queries missing from the queries file and duplicate query ids', async () => {
    const missing = await dataset('orphanqrels', {
      'corpus.jsonl': CORPUS,
      'queries.jsonl': jsonl({ _id: 'q1', text: 'x' }),
      'qrels/test.tsv': 'q1\td1\t1\nq7\td1\t1\n',
    });
    expect((await datasetError(() => loadBeirDataset(missing))).message).toContain(
      '1 judged query is missing',
    );

    const dup = await dataset('dupqueries', {
      'corpus.jsonl': CORPUS,
      'queries.jsonl': jsonl({ _id: 'q1', text: 'x' }, { _id: 'q1', text: 'y' }),
      'qrels/test.tsv': 'q1\td1\t1\n',
    });
    expect((await datasetError(() => loadBeirDataset(dup))).message).toContain('queries.jsonl:2: duplicate');
  });

  it('rejects split names that are not plain names', async () => {
    const dir = await dataset('traversal', { 'corpus.jsonl': CORPUS });
    await expect(loadBeirDataset(dir, '../x')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('readCorpus', () => {
  it('streams documents with title defaulting to empty and metadata kept', async () => {
    const dir = await dataset('corpusonly', { 'corpus.jsonl': CORPUS });
    const docs = await collect(readCorpus(path.join(dir, 'corpus.jsonl')));
    expect(docs).toEqual([
      { id: 'd1', title: 'One', text: 'first doc' },
      { id: 'd2', title: 'Two', text: 'second doc', metadata: { year: 2020 } },
      { id: 'd3', title: '', text: 'no title' },
    ]);
  });

  it('reports a malformed line with file and line number', async () => {
    const dir = await dataset('badcorpus', {
      'corpus.jsonl': CORPUS + '\n' + 'not json\n',
    });
    const file = path.join(dir, 'corpus.jsonl');
    const e = await datasetError(() => collect(readCorpus(file)));
    // 3 good lines, 1 blank line, then the bad one on line 5.
    expect(e.message).toContain(`${file}:5: malformed JSON`);
    expect(e.details).toMatchObject({ file, line: 5 });
  });

  it('reports records without _id or text', async () => {
    const dir = await dataset('badrecord', {
      'a.jsonl': jsonl({ title: 'x', text: 'y' }),
      'b.jsonl': jsonl({ _id: 'd1', title: 'x' }),
      'c.jsonl': jsonl([1, 2]),
    });
    expect((await datasetError(() => collect(readCorpus(path.join(dir, 'a.jsonl'))))).message).toContain(
      'a.jsonl:1: missing or invalid "_id"',
    );
    expect((await datasetError(() => collect(readCorpus(path.join(dir, 'b.jsonl'))))).message).toContain(
      '"text" must be a string',
    );
    expect((await datasetError(() => collect(readCorpus(path.join(dir, 'c.jsonl'))))).message).toContain(
      'expected a JSON object',
    );
  });

  it('reports a missing file and lets the consumer stop early', async () => {
    const e = await datasetError(() => collect(readCorpus(path.join(tmp, 'missing.jsonl'))));
    expect(e.message).toContain('does not exist');

    const dir = await dataset('early', { 'corpus.jsonl': CORPUS });
    const first: string[] = [];
    for await (const d of readCorpus(path.join(dir, 'corpus.jsonl'))) {
      first.push(d.id);
      break;
    }
    expect(first).toEqual(['d1']);
  });
});

describe('real SciFact (../shared/datasets/scifact)', () => {
  const exists = existsSync(SCIFACT);
  if (!exists) console.warn(`SciFact not found at ${SCIFACT}; skipping the real-dataset test`);

  it.skipIf(!exists)('has 300 test queries, 339 qrels and 5,183 corpus docs', async () => {
    const ds = await loadBeirDataset(SCIFACT);
    expect(ds.name).toBe('scifact');
    expect(ds.queries).toHaveLength(300);
    let judgments = 0;
    for (const docs of ds.qrels.values()) judgments += docs.size;
    expect(judgments).toBe(339);
    expect(ds.qrels.size).toBe(300);

    let docs = 0;
    const ids = new Set<string>();
    for await (const d of readCorpus(ds.corpusPath)) {
      docs++;
      ids.add(d.id);
    }
    expect(docs).toBe(5183);
    expect(ids.size).toBe(5183);
    // Every judged doc is in the corpus.
    for (const judged of ds.qrels.values()) for (const id of judged.keys()) expect(ids.has(id)).toBe(true);
  });

  it.skipIf(!exists)('loads the train split from queries.train.jsonl', async () => {
    const ds = await loadBeirDataset(SCIFACT, 'train');
    expect(ds.queries).toHaveLength(809);
  });
});

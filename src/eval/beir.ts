/**
 * Reader for datasets in the BEIR layout (corpus.jsonl, queries[.<split>].jsonl, qrels/<split>.tsv), the format of
 * the public benchmarks Quarry is measured on. Queries and qrels are small and loaded whole; the corpus can be
 * millions of lines, so it is only ever streamed.
 */

import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { QuarryError } from '../errors.js';
import type { Qrels } from './metrics.js';

export interface BeirQuery {
  id: string;
  text: string;
  metadata?: Record<string, unknown>;
}

export interface BeirDataset {
  dir: string;
  /** The directory's base name, e.g. `scifact`. */
  name: string;
  split: string;
  /** Absolute path of corpus.jsonl; stream it with {@link readCorpus}. */
  corpusPath: string;
  /** The queries judged in this split's qrels, in queries-file order. */
  queries: BeirQuery[];
  qrels: Qrels;
}

export interface BeirDocument {
  id: string;
  title: string;
  text: string;
  metadata?: Record<string, unknown>;
}

function datasetError(detail: string, details: Record<string, unknown>, cause?: unknown): QuarryError {
  return new QuarryError('DATASET', detail, details, cause);
}

async function kindOf(p: string): Promise<'file' | 'dir' | 'other' | 'missing'> {
  try {
    const s = await stat(p);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
  } catch {
    return 'missing';
  }
}

/**
 * Yields the non-blank lines of a text file with 1-based line numbers, streaming. readline with
 * `crlfDelay: Infinity` treats CRLF as one break; a UTF-8 BOM on the first line is dropped.
 */
async function* readLines(file: string): AsyncGenerator<{ line: string; lineNo: number }> {
  const kind = await kindOf(file);
  if (kind !== 'file') {
    throw datasetError(kind === 'missing' ? `${file} does not exist` : `${file} is not a file`, { file });
  }
  const stream = createReadStream(file, { encoding: 'utf8' });
  const rl = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let lineNo = 0;
  try {
    for await (const raw of rl) {
      lineNo++;
      const line = lineNo === 1 && raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
      if (line.trim() === '') continue;
      yield { line, lineNo };
    }
  } catch (e) {
    if (e instanceof QuarryError) throw e;
    throw datasetError(`cannot read ${file}`, { file, line: lineNo }, e);
  } finally {
    // Also runs when the consumer stops early (break/return): release the file handle.
    rl.close();
    stream.destroy();
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses one JSONL record and checks the fields BEIR defines: `_id` and `text` required, `metadata` an object. */
function parseRecord(file: string, lineNo: number, line: string): Record<string, unknown> & { _id: string } {
  const where = { file, line: lineNo };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    throw datasetError(`${file}:${lineNo}: malformed JSON (${(e as Error).message})`, where, e);
  }
  if (!isPlainObject(value)) throw datasetError(`${file}:${lineNo}: expected a JSON object`, where);
  // Some exports write numeric ids; ids are compared as strings everywhere (qrels are text).
  const id = value._id;
  if (!((typeof id === 'string' && id !== '') || typeof id === 'number')) {
    throw datasetError(`${file}:${lineNo}: missing or invalid "_id"`, where);
  }
  if (typeof value.text !== 'string') {
    throw datasetError(`${file}:${lineNo}: "text" must be a string`, where);
  }
  if (value.metadata !== undefined && value.metadata !== null && !isPlainObject(value.metadata)) {
    throw datasetError(`${file}:${lineNo}: "metadata" must be an object`, where);
  }
  return { ...value, _id: String(id) };
}

/** Streams corpus.jsonl one document at a time (never holds the file in memory). `title` defaults to ''. */
export async function* readCorpus(file: string): AsyncGenerator<BeirDocument> {
  for await (const { line, lineNo } of readLines(file)) {
    const r = parseRecord(file, lineNo, line);
    if (r.title !== undefined && r.title !== null && typeof r.title !== 'string') {
      throw datasetError(`${file}:${lineNo}: "title" must be a string`, { file, line: lineNo });
    }
    const doc: BeirDocument = {
      id: r._id,
      title: (r.title as string | null | undefined) ?? '',
      text: r.text as string,
    };
    if (isPlainObject(r.metadata)) doc.metadata = r.metadata;
    yield doc;
  }
}

/** Reads qrels/<split>.tsv: `query-id<TAB>corpus-id<TAB>score`, header optional. */
async function readQrels(file: string): Promise<Qrels> {
  const qrels: Qrels = new Map();
  let first = true;
  for await (const { line, lineNo } of readLines(file)) {
    const cols = line.split('\t').map((c) => c.trim());
    const isFirst = first;
    first = false;
    // The header is recognised by its content, not its position alone, so a headerless file loses no judgment.
    if (isFirst && cols[0]?.toLowerCase() === 'query-id') continue;
    const where = { file, line: lineNo };
    if (cols.length !== 3) {
      throw datasetError(
        `${file}:${lineNo}: expected 3 tab-separated columns (query-id, corpus-id, score), got ${cols.length}`,
        where,
      );
    }
    const [qid, docId, scoreText] = cols as [string, string, string];
    const score = Number(scoreText);
    if (scoreText === '' || !Number.isFinite(score)) {
      throw datasetError(`${file}:${lineNo}: score "${scoreText}" is not a number`, where);
    }
    if (qid === '' || docId === '')
      throw datasetError(`${file}:${lineNo}: empty query-id or corpus-id`, where);
    let judged = qrels.get(qid);
    if (!judged) {
      judged = new Map();
      qrels.set(qid, judged);
    }
    // A repeated (query, doc) pair keeps the last grade, as BEIR's dict-based loader does.
    judged.set(docId, score);
  }
  return qrels;
}

async function listSplits(qrelsDir: string): Promise<string[]> {
  try {
    const names = await readdir(qrelsDir);
    return names
      .filter((n) => n.endsWith('.tsv'))
      .map((n) => n.slice(0, -'.tsv'.length))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Loads a BEIR dataset's queries and qrels for one split (default `test`) and locates its corpus. Queries come from
 * `queries.<split>.jsonl` when that file exists (scifact's train split, nfcorpus's dev split), else from
 * `queries.jsonl`; only queries judged in the split's qrels are kept, in file order. Every qrels query must exist in
 * the queries file — a judged query without text could not be run, and scoring it 0 silently would skew results.
 */
export async function loadBeirDataset(dir: string, split = 'test'): Promise<BeirDataset> {
  const root = path.resolve(dir);
  // The split becomes part of file names: keep it a plain name so it cannot point outside the dataset.
  if (!/^[\w.-]+$/.test(split) || split === '.' || split === '..') {
    throw new QuarryError('INVALID_ARGUMENT', `invalid split name "${split}"`, { split });
  }
  const rootKind = await kindOf(root);
  if (rootKind !== 'dir') {
    throw datasetError(
      rootKind === 'missing' ? `dataset directory ${root} does not exist` : `${root} is not a directory`,
      { dir: root },
    );
  }

  const corpusPath = path.join(root, 'corpus.jsonl');
  if ((await kindOf(corpusPath)) !== 'file') {
    throw datasetError(`${corpusPath} does not exist (a BEIR dataset needs corpus.jsonl)`, {
      file: corpusPath,
    });
  }

  const qrelsDir = path.join(root, 'qrels');
  const qrelsPath = path.join(qrelsDir, `${split}.tsv`);
  if ((await kindOf(qrelsPath)) !== 'file') {
    const splits = await listSplits(qrelsDir);
    const available =
      splits.length > 0 ? `available splits: ${splits.join(', ')}` : `no qrels/*.tsv in ${root}`;
    throw datasetError(`no qrels for split "${split}": ${qrelsPath} does not exist (${available})`, {
      file: qrelsPath,
      split,
      splits,
    });
  }
  const qrels = await readQrels(qrelsPath);

  const splitQueries = path.join(root, `queries.${split}.jsonl`);
  const queriesPath =
    (await kindOf(splitQueries)) === 'file' ? splitQueries : path.join(root, 'queries.jsonl');
  if ((await kindOf(queriesPath)) !== 'file') {
    throw datasetError(
      `no queries file: neither ${splitQueries} nor ${path.join(root, 'queries.jsonl')} exists`,
      {
        file: queriesPath,
      },
    );
  }

  const queries: BeirQuery[] = [];
  const seen = new Map<string, number>();
  for await (const { line, lineNo } of readLines(queriesPath)) {
    const r = parseRecord(queriesPath, lineNo, line);
    const earlier = seen.get(r._id);
    if (earlier !== undefined) {
      throw datasetError(
        `${queriesPath}:${lineNo}: duplicate query id "${r._id}" (first on line ${earlier})`,
        {
          file: queriesPath,
          line: lineNo,
        },
      );
    }
    seen.set(r._id, lineNo);
    if (!qrels.has(r._id)) continue;
    const q: BeirQuery = { id: r._id, text: r.text as string };
    if (isPlainObject(r.metadata)) q.metadata = r.metadata;
    queries.push(q);
  }

  const unknown = [...qrels.keys()].filter((qid) => !seen.has(qid));
  if (unknown.length > 0) {
    const sample = unknown.slice(0, 5).join(', ') + (unknown.length > 5 ? ', …' : '');
    throw datasetError(
      `${qrelsPath}: ${unknown.length} judged quer${unknown.length === 1 ? 'y is' : 'ies are'} missing from ${queriesPath} (${sample})`,
      { file: qrelsPath, queriesFile: queriesPath, missing: unknown.length },
    );
  }

  return { dir: root, name: path.basename(root), split, corpusPath, queries, qrels };
}

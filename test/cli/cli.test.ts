/**
 * The real command line, run as a child process (`node bin/quarry.js …` from the repository root) against a
 * temporary store: exit codes, JSON output and error messages as a user or script sees them.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { REPO_ROOT, runCli } from './run-cli.js';

const SAMPLE_DOCS = 'samples/docs';
const SAMPLE_COUNT = fs
  .readdirSync(path.join(REPO_ROOT, SAMPLE_DOCS))
  .filter((f) => !f.startsWith('.')).length;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let tmp: string;
let store: string;

/** Runs the CLI with `args` (plus `--store <store>` unless one is given) and waits for it to exit. */
function quarry(args: string[], opts: { store?: string } = {}): Run {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.QUARRY_STORE;
  const r = spawnSync(process.execPath, ['bin/quarry.js', ...args, '--store', opts.store ?? store], {
    cwd: REPO_ROOT,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Parses the command's stdout as one JSON value, with the whole run in the failure message. */
function json<T = Record<string, unknown>>(r: Run): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-cli-'));
  store = path.join(tmp, 'store');
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface IngestJson {
  files: number;
  added: number;
  updated: number;
  unchanged: number;
  removed: number;
  failed: number;
  chunks: number;
  errors: Array<{ path: string; code: string; message: string }>;
  documents: { added: string[] };
}

interface HitJson {
  rank: number;
  score: number;
  chunk: { id: number; docId: string; text: string; start: number; end: number; sectionPath: string[] };
  document: { id: string; source: string; title: string; version: number };
}

interface CitationJson {
  marker: number;
  docId: string;
  chunkId: number;
  start: number;
  end: number;
  quote: string;
}

describe('quarry CLI', () => {
  let docId: string;

  it('ingest samples/docs --json adds every file, and a second run changes nothing', () => {
    const first = quarry(['ingest', SAMPLE_DOCS, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const report = json<IngestJson>(first);
    expect(report.files).toBe(SAMPLE_COUNT);
    expect(report.added).toBe(SAMPLE_COUNT);
    expect(report.failed).toBe(0);
    expect(report.errors).toEqual([]);
    expect(report.chunks).toBeGreaterThan(0);
    expect(report.documents.added.every((id) => id.startsWith(`${SAMPLE_DOCS}/`))).toBe(true);
    expect(fs.existsSync(path.join(store, 'quarry.db'))).toBe(true);

    const second = quarry(['ingest', SAMPLE_DOCS, '--json']);
    expect(second.code, second.stderr).toBe(0);
    const again = json<IngestJson>(second);
    expect(again.unchanged).toBe(SAMPLE_COUNT);
    expect(again.added + again.updated + again.removed + again.failed + again.chunks).toBe(0);
  });

  it('search --json -k 3 returns 3 hits with chunk and document fields', () => {
    const r = quarry(['search', 'token budget', '--json', '-k', '3']);
    expect(r.code, r.stderr).toBe(0);
    const out = json<{ query: string; hits: HitJson[]; indexVersion: number }>(r);
    expect(out.query).toBe('token budget');
    expect(out.hits).toHaveLength(3);
    expect(out.hits.map((h) => h.rank)).toEqual([1, 2, 3]);
    for (const h of out.hits) {
      expect(h.score).toBeGreaterThan(0);
      expect(typeof h.chunk.id).toBe('number');
      expect(h.chunk.text.length).toBeGreaterThan(0);
      expect(h.chunk.end - h.chunk.start).toBe(h.chunk.text.length);
      expect(h.chunk.docId).toBe(h.document.id);
      expect(h.document.source.startsWith(`${SAMPLE_DOCS}/`)).toBe(true);
      expect(h.document.title.length).toBeGreaterThan(0);
    }
    expect(out.hits[0]!.chunk.text.toLowerCase()).toMatch(/token|budget/);
    expect(out.hits[0]!.score).toBeGreaterThanOrEqual(out.hits[2]!.score);
    docId = out.hits[0]!.document.id;
  });

  it('search says what it searched instead of a misspelling, and --no-typos searches the words as written', () => {
    const r = quarry(['search', 'tokne budget', '-k', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(
      'searched for "token budget" instead of "tokne budget" (--no-typos searches the words as written)',
    );
    const j = json<{ rewrite: unknown }>(quarry(['search', 'tokne budget', '--json']));
    expect(j.rewrite).toEqual({
      original: 'tokne budget',
      searched: 'token budget',
      corrections: [{ from: 'tokne', to: 'token' }],
    });
    const asWritten = quarry(['search', 'tokne budget', '-k', '1', '--no-typos']);
    expect(asWritten.code, asWritten.stderr).toBe(0);
    expect(asWritten.stdout).not.toContain('searched for');
    expect(
      json<{ rewrite?: unknown }>(quarry(['search', 'tokne', '--json', '--no-typos'])),
    ).not.toHaveProperty('rewrite');
    // A valid word the corpus lacks is searched as written, without a notice.
    expect(quarry(['search', 'chuck budget', '-k', '1']).stdout).not.toContain('searched for');
  });

  it('ask says on stderr what it searched instead of a misspelling; the answer carries the rewrite', () => {
    const r = quarry(['ask', 'what is the tokne budget?']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      'searched for "what is the token budget?" instead of "what is the tokne budget?"',
    );
    expect(r.stdout).not.toContain('searched for');
    const j = json<{ rewrite?: { corrections: unknown } }>(
      quarry(['ask', 'what is the tokne budget?', '--json']),
    );
    expect(j.rewrite?.corrections).toEqual([{ from: 'tokne', to: 'token' }]);
    const asWritten = quarry(['ask', 'what is the tokne budget?', '--no-typos']);
    expect(asWritten.stderr).not.toContain('searched for');
  });

  it('ask --json answers with citations; ask --trace prints the trace on stderr', () => {
    const r = quarry(['ask', 'What are the default values of k1 and b?', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const a = json<{ text: string; abstained: boolean; citations: CitationJson[] }>(r);
    expect(a.abstained).toBe(false);
    expect(a.text).toContain('0.9');
    expect(a.citations.length).toBeGreaterThan(0);
    // Markdown and text documents are stored verbatim: the cited span is in the file at the stated offsets.
    const verbatim = a.citations.filter((c) => /\.(md|txt)$/.test(c.docId));
    expect(verbatim.length).toBeGreaterThan(0);
    for (const c of verbatim) {
      expect(fs.readFileSync(path.join(REPO_ROOT, c.docId), 'utf8').slice(c.start, c.end)).toBe(c.quote);
    }
    expect(a.citations.some((c) => c.quote.includes('0.9'))).toBe(true);

    const traced = quarry(['ask', 'What are the default values of k1 and b?', '--trace']);
    expect(traced.code, traced.stderr).toBe(0);
    expect(traced.stdout).toContain('0.9');
    expect(traced.stdout).toContain('Sources:');
    expect(traced.stderr).toContain('trace:');
    for (const stage of ['retrieve.bm25', 'answer.extractive', 'answer.validate'])
      expect(traced.stderr).toContain(stage);
    expect(traced.stdout).not.toContain('trace:');
  });

  it('stats --json and docs --json describe the store', () => {
    const s = quarry(['stats', '--json']);
    expect(s.code, s.stderr).toBe(0);
    const stats = json<{
      documents: number;
      chunks: number;
      storeDir: string;
      index: { chunks: number; loadedFrom: string };
    }>(s);
    expect(stats.documents).toBe(SAMPLE_COUNT);
    expect(stats.chunks).toBeGreaterThan(0);
    expect(stats.index.chunks).toBe(stats.chunks);
    expect(stats.index.loadedFrom).toBe('snapshot');
    expect(fs.realpathSync(stats.storeDir)).toBe(fs.realpathSync(store));

    const d = quarry(['docs', '--json']);
    expect(d.code, d.stderr).toBe(0);
    const docs =
      json<Array<{ id: string; chunkCount: number; meta: { source: string; version: number } }>>(d);
    expect(docs).toHaveLength(SAMPLE_COUNT);
    expect(docs.reduce((a, x) => a + x.chunkCount, 0)).toBe(stats.chunks);
    expect(docs.map((x) => x.id)).toContain(docId);
  });

  it('delete <id> --json deletes it; deleting an unknown id exits 4', () => {
    const r = quarry(['delete', docId, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toEqual({ deleted: [docId], missing: [] });

    const after = json<{ hits: HitJson[] }>(quarry(['search', 'token budget', '--json', '-k', '50']));
    expect(after.hits.some((h) => h.document.id === docId)).toBe(false);

    const missingJson = quarry(['delete', 'nope', '--json']);
    expect(missingJson.code).toBe(4);
    expect(json(missingJson)).toEqual({ deleted: [], missing: ['nope'] });
  });

  it('search --retriever dense on a store without a dense index warns on stderr, once per degraded stage', () => {
    const docs = path.join(tmp, 'tiny-docs');
    const tiny = path.join(tmp, 'tiny-store');
    fs.mkdirSync(docs);
    fs.writeFileSync(path.join(docs, 'a.md'), '# Comets\n\nA zorblaxian comet crossed the sky.\n');
    expect(quarry(['ingest', docs], { store: tiny }).code).toBe(0);
    const r = quarry(['search', 'zorblaxian', '--retriever', 'dense'], { store: tiny });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Comets/);
    expect(r.stderr).toMatch(/^warning: retrieve\.dense degraded: .*BM25 answered alone$/m);
    const plain = quarry(['search', 'zorblaxian', '--retriever', 'bm25'], { store: tiny });
    expect(plain.stderr).not.toMatch(/warning/);
  });

  it('rejects invalid filters with exit 2 and names the problem', () => {
    const bad = quarry(['search', 'x', '--filter', '{"a":{"$bad":1}}']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('$bad');
    expect(bad.stderr.toLowerCase()).toContain('filter');
    expect(bad.stdout).toBe('');

    const notJson = quarry(['search', 'x', '--filter', 'not json', '--json']);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toContain('--filter');
    expect(json<{ error: { code: string } }>(notJson).error.code).toBe('INVALID_FILTER');
  });

  it('ingest of a missing path exits 6 and names the path', () => {
    const r = quarry(['ingest', 'does-not-exist']);
    expect(r.code).toBe(6);
    expect(`${r.stdout}\n${r.stderr}`).toContain('does-not-exist');
    expect(r.stdout).toContain('UNREADABLE_FILE');
  });
});

describe('quarry eval', () => {
  function writeDataset(dir: string): void {
    const corpus = [
      { _id: 'd1', title: 'Volcanoes', text: 'Volcanoes erupt molten lava and ash from the mantle.' },
      { _id: 'd2', title: 'Bees', text: 'Honey bees pollinate flowers and make honey in hives.' },
      { _id: 'd3', title: 'Glaciers', text: 'Glaciers are slow rivers of ice that carve valleys.' },
      { _id: 'd4', title: 'Comets', text: 'Comets are icy bodies that grow tails near the sun.' },
      { _id: 'd5', title: 'Coral', text: 'Coral reefs are built by tiny animals in warm seas.' },
    ];
    const queries = [
      { _id: 'q1', text: 'volcanoes erupt lava', metadata: { answers: ['Molten  LAVA'] } },
      { _id: 'q2', text: 'bees make honey', metadata: { answers: ['honey bees'] } },
      { _id: 'q3', text: 'glaciers carve valleys', metadata: { answers: ['a glacier'] } },
      { _id: 'q4', text: 'unjudged query about comets' },
      // Judged only in the train split; each matches two documents, so a ranker has pairs to learn from.
      { _id: 't1', text: 'honey and ice' },
      { _id: 't2', text: 'lava and the sun' },
    ];
    fs.mkdirSync(path.join(dir, 'qrels'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'corpus.jsonl'), `${corpus.map((c) => JSON.stringify(c)).join('\n')}\n`);
    fs.writeFileSync(
      path.join(dir, 'queries.jsonl'),
      `${queries.map((q) => JSON.stringify(q)).join('\n')}\n`,
    );
    fs.writeFileSync(
      path.join(dir, 'qrels', 'test.tsv'),
      'query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n',
    );
    fs.writeFileSync(
      path.join(dir, 'qrels', 'train.tsv'),
      'query-id\tcorpus-id\tscore\nt1\td3\t1\nt2\td4\t1\n',
    );
  }

  it('eval --json reports IR metrics and latency on a BEIR-layout dataset', () => {
    const dataset = path.join(tmp, 'tinybeir');
    writeDataset(dataset);
    const r = quarry(['eval', dataset, '--json'], { store: path.join(tmp, 'eval-store') });
    expect(r.code, r.stderr).toBe(0);
    const report = json<{
      dataset: string;
      queries: number;
      corpus: { documents: number };
      metrics: Record<string, number>;
      latency_ms: Record<string, number>;
    }>(r);
    expect(report.dataset).toBe('tinybeir');
    expect(report.queries).toBe(3);
    expect(report.corpus.documents).toBe(5);
    for (const m of ['ndcg@10', 'recall@10', 'recall@100', 'mrr@10', 'hit@5']) {
      expect(report.metrics, m).toHaveProperty(m);
      expect(report.metrics[m], m).toBeGreaterThanOrEqual(0);
      expect(report.metrics[m], m).toBeLessThanOrEqual(1);
    }
    // Every judged query names its document outright: BM25 must rank it first.
    expect(report.metrics['hit@5']).toBe(1);
    expect(report.metrics['recall@10']).toBe(1);
    expect(report.metrics['mrr@10']).toBe(1);
    expect(report.metrics['ndcg@10']).toBeCloseTo(1, 10);
    for (const p of ['p50', 'p95', 'p99']) {
      expect(report.latency_ms, p).toHaveProperty(p);
      expect(report.latency_ms[p], p).toBeGreaterThanOrEqual(0);
    }
    expect(report.latency_ms.p50).toBeLessThanOrEqual(report.latency_ms.p99!);
  });

  it('eval --answers adds answer_hit@1: the first cited sentence contains a gold answer', () => {
    const dataset = path.join(tmp, 'tinybeir-answers');
    writeDataset(dataset);
    const r = quarry(['eval', dataset, '--answers', '--json'], {
      store: path.join(tmp, 'eval-answers-store'),
    });
    expect(r.code, r.stderr).toBe(0);
    const report = json<{
      metrics: Record<string, number>;
      answers: { questions: number; withGold: number };
    }>(r);
    // q1's quote holds "molten lava" (case and spacing ignored), q2's "Honey bees", q3's no "a glacier".
    expect(report.metrics['answer_hit@1']).toBeCloseTo(2 / 3, 10);
    expect(report.answers).toMatchObject({ questions: 3, withGold: 3 });
  });

  it('train-ranker learns a model from a split, and eval --ranker reranks with it', () => {
    const dataset = path.join(tmp, 'tinybeir-ltr');
    writeDataset(dataset);
    const model = path.join(tmp, 'ltr.json');
    const trained = quarry(
      ['train-ranker', dataset, '--split', 'train', '--out', model, '--retriever', 'bm25', '--json'],
      { store: path.join(tmp, 'ltr-store') },
    );
    expect(trained.code, trained.stderr).toBe(0);
    expect(json(trained)).toMatchObject({ split: 'train', queries: 2, out: model });
    const saved = JSON.parse(fs.readFileSync(model, 'utf8')) as {
      format: string;
      trainedOn: { split: string };
    };
    expect(saved.format).toBe('quarry-ltr');
    expect(saved.trainedOn.split).toBe('train');
    const r = quarry(['eval', dataset, '--ranker', model, '--json'], { store: path.join(tmp, 'ltr-store') });
    expect(r.code, r.stderr).toBe(0);
    const report = json<{
      rerank: { reranker: string; status: Record<string, number> };
      metrics: Record<string, number>;
    }>(r);
    expect(report.rerank.reranker).toBe('ltr');
    // Every judged query went through the rerank stage (a one-candidate pool has nothing to reorder).
    expect(Object.values(report.rerank.status).reduce((a, b) => a + b, 0)).toBe(3);
    expect(report.metrics['ndcg@10']).toBeGreaterThan(0);

    fs.writeFileSync(
      path.join(tmp, 'bad-model.json'),
      '{"format":"quarry-ltr","version":1,"features":["nope"]}',
    );
    const bad = quarry(['eval', dataset, '--ranker', path.join(tmp, 'bad-model.json'), '--json'], {
      store: path.join(tmp, 'ltr-store'),
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bad-model\.json|nope/);
  });

  it('eval on a missing dataset directory exits 7', () => {
    const missing = path.join(tmp, 'no-such-dataset');
    const r = quarry(['eval', missing, '--json'], { store: path.join(tmp, 'eval-store-2') });
    expect(r.code).toBe(7);
    expect(r.stderr).toContain('no-such-dataset');
    expect(json<{ error: { code: string } }>(r).error.code).toBe('DATASET');
  });
});

describe('quarry ask --batch', () => {
  it('answers a JSONL file in input order, with citations, and rejects a bad file naming the line', () => {
    const batchStore = path.join(tmp, 'batch-store');
    expect(quarry(['ingest', SAMPLE_DOCS], { store: batchStore }).code).toBe(0);
    const file = path.join(tmp, 'questions.jsonl');
    fs.writeFileSync(
      file,
      [
        { id: 'size', question: 'What is the default chunk size?' },
        { question: 'What is the capital of Mongolia?' },
        { id: 7, question: 'How do I delete a document?', k: 3 },
      ]
        .map((q) => JSON.stringify(q))
        .join('\n'),
    );
    const out = path.join(tmp, 'answers.jsonl');
    const r = quarry(['ask', '--batch', file, '--out', out, '--concurrency', '2'], { store: batchStore });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/answered 3 of 3/);
    const lines = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as { id: string; answer: { text: string; abstained: boolean; citations: unknown[] } },
      );
    expect(lines.map((l) => l.id)).toEqual(['size', '2', '7']);
    expect(lines[0]!.answer.text).toContain('256');
    expect(lines[0]!.answer.citations.length).toBeGreaterThan(0);
    expect(lines[1]!.answer.abstained).toBe(true);

    fs.writeFileSync(file, '{"question":"ok?"}\n{"question":""}\n');
    const bad = quarry(['ask', '--batch', file], { store: batchStore });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/line 2/);
  });
});

describe('quarry feedback', () => {
  it('records a judgment on a document, and names what was wrong otherwise', () => {
    const fbStore = path.join(tmp, 'feedback-store');
    expect(quarry(['ingest', SAMPLE_DOCS], { store: fbStore }).code).toBe(0);
    const docs = json<Array<{ id: string }>>(quarry(['docs', '--json'], { store: fbStore }));
    const ok = quarry(['feedback', 'how big are chunks', '--doc', docs[0]!.id, '--helpful', '--json'], {
      store: fbStore,
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect(json(ok)).toMatchObject({ query: 'how big are chunks', docId: docs[0]!.id, helpful: true });
    const missing = quarry(['feedback', 'q', '--doc', 'nope.md', '--not-helpful'], { store: fbStore });
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain('nope.md');
    const neither = quarry(['feedback', 'q', '--doc', docs[0]!.id], { store: fbStore });
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/--helpful/);
  });
});

describe('quarry ask with an LLM', () => {
  it('streams the answer, then lists its sources, usage and any fallback', async () => {
    const server = await startFakeOpenAIChatServer();
    try {
      const llmStore = path.join(tmp, 'llm-store');
      expect(quarry(['ingest', SAMPLE_DOCS], { store: llmStore }).code).toBe(0);
      const cfg = path.join(tmp, 'llm.json');
      fs.writeFileSync(
        cfg,
        JSON.stringify({
          llm: { provider: 'openai', baseURL: server.url, model: 'gpt-4o-mini', maxRetries: 0 },
        }),
      );
      server.respond = (body) => {
        const user = (body.messages as Array<{ role: string; content: string }>)[1]!.content;
        const n = /<source id="(\d+)"[^>]*>\n[^<]*256 tokens/.exec(user)?.[1] ?? '1';
        return {
          kind: 'reply',
          deltas: ['By default Quarry splits ', 'documents into chunks ', `of 256 tokens [${n}].`],
        };
      };
      // Asynchronous spawn: the fake server lives in this process and must keep answering.
      const r = await runCli([
        'ask',
        'What is the default chunk size?',
        '--config',
        cfg,
        '--store',
        llmStore,
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^By default Quarry splits documents into chunks of 256 tokens \[\d\]\./);
      expect(r.stdout).toContain('Sources:');
      expect(r.stdout).toMatch(/tokens \d+ in \/ 3 out/);
      expect(server.requests).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});

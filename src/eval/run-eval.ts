/**
 * `quarry eval`: ingest a BEIR-layout corpus (or a golden set's corpus) into a store (temporary unless
 * `--store`), run every judged query through the same search path users get, rank documents by their best
 * chunk, and report IR metrics and latency as versioned JSON; with `--answers`, a golden set or
 * `--unanswerable`, also answer every question and report answer quality (see ./answers.ts for the metric
 * names and what each is averaged over).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TRUSTED_LOCAL } from '../access/principal.js';
import type { QuarryConfigInput } from '../config/config.js';
import { QuarryError } from '../errors.js';
import { createLlmProvider } from '../generate/llm/create.js';
import { ingestProgressEvent } from '../ingest/progress.js';
import type { ProgressEvent } from '../observability/progress.js';
import { Quarry } from '../pipeline/quarry.js';
import type { Citation } from '../types.js';
import { type AnswerEvalSummary, evaluateAnswers, expectationOf } from './answers.js';
import { type BeirQuery, loadBeirDataset } from './beir.js';
import { corpusDocKey, isGoldenSetPath, loadGoldenSet } from './golden.js';
import { evaluateRun, latencySummary, type Qrels, type Run } from './metrics.js';
import { type EvalQueryRecord, EvalRuns, primaryMetric, worstQueries } from './runs.js';
import { holdOutCorpus, unanswerableQueries } from './unanswerable.js';

export const EVAL_METRICS = [
  'ndcg@10',
  'recall@1',
  'recall@5',
  'recall@10',
  'recall@100',
  'mrr@10',
  'hit@5',
] as const;

export interface EvalOptions {
  /** A BEIR-layout dataset directory, or a golden-set file (`.jsonl`, `.json`; see ./golden.ts). */
  dataset: string;
  /** The corpus (directory or file) a golden set is evaluated on; default: the one the set names. */
  corpus?: string;
  /**
   * Hold out this share of the corpus's documents (every 1/share-th, in corpus order) and expect the
   * questions whose relevant documents were all held out to be abstained on (see ./unanswerable.ts).
   * Implies `answers`.
   */
  unanswerable?: number;
  /** Judge faithfulness with the configured LLM (default: when an `llm` section is configured). */
  judge?: boolean;
  /** Base configuration (e.g. from `--config`); the eval's own options below take precedence. */
  config?: QuarryConfigInput;
  split?: string;
  /** Store directory to ingest into and keep; default: a temporary store removed afterwards. */
  store?: string;
  k1?: number;
  b?: number;
  /** Chunk size in tokens; default keeps documents whole (up to 8,192 tokens), as BEIR baselines do. */
  chunkTokens?: number;
  /** Evaluate only the first n judged queries. */
  limit?: number;
  retriever?: 'bm25' | 'dense' | 'hybrid';
  /** Query typo correction (default on, as in search). */
  typos?: boolean;
  /** RM3 pseudo-relevance feedback (default off). */
  prf?: boolean;
  /** Rerank with this learning-to-rank model file (`quarry train-ranker` output). */
  ranker?: string;
  /** Reranker to use (default: from config; `ltr` when `ranker` is given). */
  reranker?: 'none' | 'ltr' | 'onnx' | 'http' | 'llm';
  /** Also answer every judged query with the configured answerer and score the answers. */
  answers?: boolean;
  /** Progress of the ingest (records) and dense build (chunks) phases. */
  onProgress?: (p: ProgressEvent) => void;
  /** Progress of the query (and `answers`) phases. */
  onQueries?: (done: number, total: number) => void;
  /**
   * Store directory to record the run in (`<dir>/eval.db`, see src/eval/runs.ts): the report, every
   * query's metrics and latency, and the traces of the `keepTraces` worst queries (re-run traced).
   */
  record?: string;
  /** A label for the recorded run (e.g. the config or commit it measured). */
  label?: string;
  /** Worst queries whose traces are kept with a recorded run (default 20). */
  keepTraces?: number;
  /** Include every query's metrics (and `latency_ms`) in the report's `perQuery` (compare, HTML reports). */
  perQuery?: boolean;
}

export interface EvalReport {
  /** Report format version: bump when fields change meaning. */
  version: 1;
  dataset: string;
  split: string;
  queries: number;
  retriever: string;
  dense?: {
    ready: boolean;
    /** The first (default-routed) model; `models` lists every configured one. */
    model: string | null;
    index: string;
    models: Array<{ name: string; model: string | null; index: string; vectors: number }>;
    buildMs: number;
    fusion: unknown;
  };
  bm25: { k1: number; b: number; lengthNorm: string; fields: string };
  chunking: { maxTokens: number; overlapTokens: number; description: string };
  /** `rewritten`: queries that typo correction changed (each result's `rewrite`). */
  query: { typos: boolean; prf: boolean; rewritten: number };
  corpus: { documents: number; chunks: number; ingestMs: number; documentsPerSecond: number };
  metrics: Record<(typeof EVAL_METRICS)[number], number> & Record<string, number>;
  latency_ms: { p50: number; p95: number; p99: number; mean: number; max: number };
  rerank?: { reranker: string; model: string | null; pool: number; status: Record<string, number> };
  /** With `--answers`: how the answer stage did (answer metrics themselves are in `metrics`). */
  answers?: AnswerEvalSummary;
  /** Evaluating a golden set: its file and the corpus it was evaluated on. */
  golden?: { file: string; corpus: string; items: number; drafts: number };
  /** With `unanswerable`: the held-out documents and the questions that became unanswerable. */
  unanswerable?: {
    share: number;
    selection: string;
    heldOutDocuments: number;
    documents: number;
    questions: number;
  };
  /** With `perQuery`: each judged query's metrics by query id, plus its `latency_ms`. */
  perQuery?: Record<string, Record<string, number>>;
  /** Where the run was recorded (with `record`). */
  recorded?: { store: string; runId: string };
}

const WHOLE_DOCUMENT_TOKENS = 8192;

/** What an eval runs on: the questions, their judgments and the corpus to ingest. */
interface EvalSet {
  name: string;
  split: string;
  corpusPaths: string[];
  queries: BeirQuery[];
  /** Retrieval judgments (golden sets: each answerable item's expected sources). */
  qrels: Qrels;
  /** The id judgments and expected sources use for a document. */
  docKey: (d: { docId: string; source: string }) => string;
  answers: boolean;
  golden?: EvalReport['golden'];
  unanswerable?: EvalReport['unanswerable'];
}

async function loadEvalSet(opts: EvalOptions, scratchDir: () => string): Promise<EvalSet> {
  if (isGoldenSetPath(opts.dataset)) {
    if (opts.unanswerable !== undefined)
      throw new QuarryError(
        'INVALID_ARGUMENT',
        '--unanswerable builds unanswerable questions from a BEIR-layout QA set; a golden set marks them itself ("answerable": false)',
      );
    const set = await loadGoldenSet(opts.dataset);
    const corpus = opts.corpus === undefined ? set.corpus : path.resolve(opts.corpus);
    if (corpus === undefined)
      throw new QuarryError(
        'INVALID_ARGUMENT',
        `golden set ${set.file} names no corpus: pass --corpus <dir or file> (the documents its questions are about)`,
        { file: set.file },
      );
    if (!fs.existsSync(corpus))
      throw new QuarryError('DATASET', `corpus ${corpus} does not exist`, { corpus });
    const qrels: Qrels = new Map();
    for (const it of set.items)
      if (it.answerable && it.sources.length > 0) qrels.set(it.id, new Map(it.sources.map((d) => [d, 1])));
    return {
      name: set.name,
      split: 'golden',
      corpusPaths: [corpus],
      queries: set.items.map((it) => ({
        id: it.id,
        text: it.question,
        metadata: { answers: it.answers, sources: it.sources, answerable: it.answerable, tags: it.tags },
      })),
      qrels,
      docKey: (d) => corpusDocKey(d, corpus),
      answers: true,
      golden: {
        file: set.file,
        corpus,
        items: set.items.length,
        drafts: set.items.filter((it) => it.draft === true).length,
      },
    };
  }
  if (opts.corpus !== undefined)
    throw new QuarryError(
      'INVALID_ARGUMENT',
      '--corpus is for golden sets; a BEIR-layout dataset brings its own corpus.jsonl',
    );
  const dataset = await loadBeirDataset(opts.dataset, opts.split ?? 'test');
  const docKey = (d: { docId: string }) => d.docId;
  if (opts.unanswerable === undefined)
    return {
      name: dataset.name,
      split: dataset.split,
      corpusPaths: [dataset.corpusPath],
      queries: dataset.queries,
      qrels: dataset.qrels,
      docKey,
      answers: opts.answers === true,
    };
  const held = await holdOutCorpus(dataset.corpusPath, opts.unanswerable, scratchDir());
  const unanswerable = unanswerableQueries(dataset.qrels, held.heldOut);
  const qrels: Qrels = new Map([...dataset.qrels].filter(([qid]) => !unanswerable.has(qid)));
  return {
    name: dataset.name,
    split: dataset.split,
    corpusPaths: [held.corpusPath],
    queries: dataset.queries.map((q) =>
      unanswerable.has(q.id) ? { ...q, metadata: { ...q.metadata, answerable: false } } : q,
    ),
    qrels,
    docKey,
    answers: true,
    unanswerable: {
      share: opts.unanswerable,
      selection: held.selection,
      heldOutDocuments: held.heldOut.size,
      documents: held.documents,
      questions: unanswerable.size,
    },
  };
}

export async function runEval(opts: EvalOptions): Promise<EvalReport> {
  let scratch: string | undefined;
  try {
    return await evaluate(opts, () => {
      scratch ??= fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-eval-set-'));
      return scratch;
    });
  } finally {
    if (scratch !== undefined) fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function evaluate(opts: EvalOptions, scratchDir: () => string): Promise<EvalReport> {
  const dataset = await loadEvalSet(opts, scratchDir);
  const queries =
    opts.limit !== undefined ? dataset.queries.slice(0, Math.max(0, opts.limit)) : dataset.queries;
  if (queries.length === 0)
    throw new QuarryError('DATASET', `${opts.dataset}: no judged queries in split ${dataset.split}`);
  const maxTokens = opts.chunkTokens ?? WHOLE_DOCUMENT_TOKENS;
  const overlapTokens = opts.chunkTokens === undefined ? 0 : Math.min(32, Math.floor(maxTokens / 8));
  const base: QuarryConfigInput = opts.config ?? {};
  const tempStore =
    opts.store === undefined ? fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-eval-')) : undefined;
  const quarry = Quarry.open({
    store: opts.store ?? tempStore,
    config: {
      ...base,
      chunking: {
        ...base.chunking,
        maxTokens,
        overlapTokens,
        parentMaxTokens: Math.max(maxTokens * 4, 1024),
      },
      bm25: {
        ...base.bm25,
        ...(opts.k1 !== undefined ? { k1: opts.k1 } : {}),
        ...(opts.b !== undefined ? { b: opts.b } : {}),
      },
      ingest: { ...base.ingest, batchSize: 512 },
      query: {
        ...base.query,
        ...(opts.typos !== undefined ? { typos: opts.typos } : {}),
        ...(opts.prf !== undefined ? { prf: opts.prf } : {}),
      },
      rerank: {
        ...base.rerank,
        ...(opts.ranker !== undefined ? { reranker: 'ltr' as const, ltrModel: opts.ranker } : {}),
        ...(opts.reranker !== undefined ? { reranker: opts.reranker } : {}),
      },
      // Eval measures ranking: every query must run the full pipeline, never a cached answer.
      cache: { ...base.cache, responses: false, retrievals: false },
    },
  });
  try {
    const onProgress = opts.onProgress;
    const ingest = await quarry.ingest(
      dataset.corpusPaths,
      onProgress === undefined
        ? {}
        : {
            onProgress: (p) => onProgress(ingestProgressEvent(p)),
          },
    );
    if (ingest.errors.length > 0 && ingest.added + ingest.unchanged + ingest.updated === 0) {
      throw new QuarryError(
        'DATASET',
        `${dataset.corpusPaths.join(', ')}: no document could be ingested (${ingest.errors[0]?.message})`,
      );
    }
    const retriever = opts.retriever ?? quarry.config.retrieval.retriever;
    const denseStart = performance.now();
    // Build every configured dense model before timing queries: the built-in one trains on the corpus, remote
    // and ONNX ones embed it (ingest already synced them; this is a no-op then).
    let denseReady = false;
    if (retriever !== 'bm25') {
      // Training and embedding run in one synchronous step: report its start and its end.
      const chunks = quarry.store.stats().chunks;
      onProgress?.({ phase: 'dense build', done: 0, total: chunks, unit: 'chunks' });
      await quarry.syncDense();
      denseReady = quarry.denseModels.models.every((m) =>
        m.provider === 'builtin' ? m.index.ensure() : m.index.size > 0,
      );
      onProgress?.({ phase: 'dense build', done: chunks, total: chunks, unit: 'chunks' });
    }
    const denseBuildMs = retriever === 'bm25' ? 0 : performance.now() - denseStart;
    const denseModels = quarry.denseModels.models.map((m) => ({
      name: m.name,
      model: m.provider === 'builtin' ? (m.index.embedder?.id ?? null) : (m.index.modelId ?? null),
      index: m.index.kind,
      vectors: m.index.size,
    }));
    const run: Run = new Map();
    const latencies: number[] = [];
    const tops = new Map<string, string[]>();
    const rerankStatus: Record<string, number> = {};
    let rewritten = 0;
    for (const [i, q] of queries.entries()) {
      const t0 = performance.now();
      // Evaluation measures the whole corpus it ingested, as its owner.
      const result = await quarry.search(q.text, {
        k: 100,
        collapseDocuments: true,
        retriever,
        principal: TRUSTED_LOCAL,
      });
      latencies.push(performance.now() - t0);
      const keyOf = (h: (typeof result.hits)[number]) =>
        dataset.docKey({ docId: h.chunk.docId, source: h.document.source });
      tops.set(q.id, result.hits.slice(0, 10).map(keyOf));
      if (result.rewrite !== undefined) rewritten++;
      if (result.rerank !== undefined)
        rerankStatus[result.rerank.status] = (rerankStatus[result.rerank.status] ?? 0) + 1;
      // Score by returned position: the evaluator re-sorts by score, and the pipeline's order (exact-match
      // promotion, fusion, freshness, reranking) is what users get, not the raw retriever score.
      run.set(
        q.id,
        result.hits.map((h, i) => ({ docId: keyOf(h), score: result.hits.length - i })),
      );
      if (i % 50 === 0) opts.onQueries?.(i, queries.length);
    }
    opts.onQueries?.(queries.length, queries.length);
    const judged = new Map([...dataset.qrels].filter(([qid]) => run.has(qid)));
    const evaluation = evaluateRun(judged, run, [...EVAL_METRICS]);
    const llm = quarry.config.llm;
    const judge =
      llm !== undefined && opts.judge !== false
        ? createLlmProvider({ ...llm, prices: { ...quarry.config.prices, ...llm.prices } })
        : undefined;
    const relevantOf = (qid: string) =>
      [...(dataset.qrels.get(qid) ?? [])].filter(([, grade]) => grade > 0).map(([d]) => d);
    const answers =
      opts.answers === true || dataset.answers
        ? await evaluateAnswers(quarry, queries, {
            retriever,
            expectation: (q) => expectationOf(q, relevantOf(q.id)),
            docKey: (c: Citation) => dataset.docKey(c),
            ...(judge === undefined ? {} : { judge }),
            ...(opts.onQueries === undefined ? {} : { onQueries: opts.onQueries }),
          })
        : undefined;
    const rerank = quarry.config.rerank;
    const stats = quarry.stats();
    const lat = latencySummary(latencies);
    const params = quarry.lexical.bm25.params;
    const report: EvalReport = {
      version: 1,
      dataset: dataset.name,
      split: dataset.split,
      queries: dataset.golden === undefined ? evaluation.queryCount : queries.length,
      retriever,
      ...(retriever === 'bm25'
        ? {}
        : {
            dense: {
              ready: denseReady,
              model: denseModels[0]?.model ?? null,
              index: denseModels[0]?.index ?? 'none',
              models: denseModels,
              buildMs: Math.round(denseBuildMs),
              fusion: retriever === 'hybrid' ? quarry.config.retrieval.fusion : null,
            },
          }),
      bm25: { k1: params.k1, b: params.b, lengthNorm: params.lengthNorm, fields: quarry.config.bm25.fields },
      chunking: {
        maxTokens,
        overlapTokens,
        description:
          opts.chunkTokens === undefined
            ? `whole documents (up to ${WHOLE_DOCUMENT_TOKENS} tokens per chunk); a document scores by its best chunk`
            : `${maxTokens}-token chunks, ${overlapTokens}-token overlap; a document scores by its best chunk`,
      },
      query: { typos: quarry.config.query.typos, prf: quarry.config.query.prf, rewritten },
      corpus: {
        documents: stats.documents,
        chunks: stats.chunks,
        ingestMs: ingest.durationMs,
        documentsPerSecond: ingest.durationMs > 0 ? Math.round((ingest.added / ingest.durationMs) * 1000) : 0,
      },
      ...(rerank.reranker === 'none'
        ? {}
        : {
            rerank: {
              reranker: rerank.reranker,
              model: rerank.reranker === 'ltr' ? (rerank.ltrModel ?? 'default') : null,
              pool: rerank.pool,
              status: rerankStatus,
            },
          }),
      metrics: {
        ...(judged.size > 0 ? evaluation.mean : {}),
        ...answers?.metrics,
      } as EvalReport['metrics'],
      latency_ms: { p50: lat.p50, p95: lat.p95, p99: lat.p99, mean: lat.mean, max: lat.max },
      ...(answers === undefined ? {} : { answers: answers.summary }),
      ...(dataset.golden === undefined ? {} : { golden: dataset.golden }),
      ...(dataset.unanswerable === undefined ? {} : { unanswerable: dataset.unanswerable }),
    };
    if (opts.perQuery === true)
      report.perQuery = Object.fromEntries(
        queries.flatMap((q, i) => {
          const m = evaluation.perQuery.get(q.id);
          return m === undefined ? [] : [[q.id, { ...m, latency_ms: latencies[i] ?? 0 }]];
        }),
      );
    if (opts.record !== undefined) {
      // Each query's record carries its retrieval metrics (judged queries) and its answer metrics.
      const perQuery: EvalQueryRecord[] = queries.flatMap((q, i) => {
        const retrieval = evaluation.perQuery.get(q.id);
        const answered = answers?.perQuery.get(q.id);
        if (retrieval === undefined && answered === undefined) return [];
        const metrics = { ...retrieval, ...answered };
        return [{ id: q.id, text: q.text, metrics, latencyMs: latencies[i] ?? 0, top: tops.get(q.id) ?? [] }];
      });
      // The worst queries are searched again with a trace: tracing every query would slow the timed run.
      const metric = primaryMetric(report.metrics) ?? 'ndcg@10';
      for (const w of worstQueries(perQuery, metric, opts.keepTraces ?? 20)) {
        const traced = await quarry.search(w.text, {
          k: 100,
          collapseDocuments: true,
          retriever,
          principal: TRUSTED_LOCAL,
          trace: true,
        });
        if (traced.trace !== undefined) w.trace = traced.trace;
      }
      // So are the worst answers, asked again with a trace (the answer stages included), so each one the
      // report lists opens in the trace view.
      const byId = new Map(perQuery.map((q) => [q.id, q]));
      for (const w of answers?.summary.worst ?? []) {
        const q = byId.get(w.id);
        if (q === undefined) continue;
        const asked = await quarry.ask(q.text, { retriever, principal: TRUSTED_LOCAL, trace: true });
        if (asked.trace !== undefined) q.trace = asked.trace;
      }
      const runs = EvalRuns.open(opts.record, { create: true });
      try {
        const runId = runs.record(report, perQuery, opts.label === undefined ? {} : { label: opts.label });
        report.recorded = { store: path.resolve(opts.record), runId };
      } finally {
        runs.close();
      }
    }
    return report;
  } finally {
    quarry.close();
    if (tempStore !== undefined) fs.rmSync(tempStore, { recursive: true, force: true });
  }
}

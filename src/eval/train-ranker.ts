/**
 * `quarry train-ranker`: ingest a BEIR-layout corpus into a store the way `quarry eval` does, retrieve a pool
 * per judged query through the real search path, compute LTR features, train, and write the model JSON with
 * its provenance and train metrics. Judgments: the split's qrels, plus optional golden-set and feedback JSONL.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { TRUSTED_LOCAL } from '../access/principal.js';
import type { QuarryConfigInput } from '../config/config.js';
import { QuarryError } from '../errors.js';
import { Quarry } from '../pipeline/quarry.js';
import { ltrDepsFor } from '../pipeline/rerank-deps.js';
import { extractFeatures, type LtrDeps } from '../rerank/ltr/features.js';
import type { LtrModel } from '../rerank/ltr/model.js';
import {
  type Judgments,
  judgmentsFromVotes,
  readFeedback,
  readGoldenSet,
  type TrainingQuery,
  type TrainOptions,
  TrainOptionsSchema,
  trainLinearRanker,
} from '../rerank/ltr/train.js';
import { loadBeirDataset } from './beir.js';

/** Options the CLI exposes for `train-ranker` (and `eval --ranker`), validated at the boundary. */
export const TrainRankerOptionsSchema = z.object({
  /** BEIR-layout dataset directory; optional when training on a store's recorded feedback only. */
  dataset: z.string().min(1).optional(),
  /** Judged split to train on; never a test split for a model you will evaluate on that set. */
  split: z.string().min(1).default('train'),
  /** Where the model JSON is written. */
  out: z.string().min(1),
  /** First-stage retriever whose pool is reranked. */
  retriever: z.enum(['bm25', 'dense', 'hybrid']).default('hybrid'),
  /** Pool size per query. */
  depth: z.number().int().min(2).max(1000).default(100),
  /** Store directory to ingest into and keep (an existing store is reused); default a temporary store. */
  store: z.string().min(1).optional(),
  /** Extra judgments: golden-set JSONL and feedback JSONL files. */
  golden: z.string().min(1).optional(),
  feedback: z.string().min(1).optional(),
  /** Also learn from the feedback recorded in the store (`quarry feedback`, `recordFeedback`). */
  fromFeedback: z.boolean().default(false),
  train: TrainOptionsSchema.partial().optional(),
});
export type TrainRankerOptions = z.input<typeof TrainRankerOptionsSchema> & {
  config?: QuarryConfigInput;
  onQueries?: (done: number, total: number) => void;
};

export interface TrainRankerReport {
  dataset: string | null;
  split: string | null;
  retriever: string;
  depth: number;
  /** Judged queries run; `trainedQueries` of them had a relevant document in their pool. */
  queries: number;
  trainedQueries: number;
  pairs: number;
  ndcgBefore: number;
  ndcgAfter: number;
  out: string;
  model: LtrModel;
}

const WHOLE_DOCUMENT_TOKENS = 8192;

/**
 * Opens (or creates) a store holding a BEIR corpus with `quarry eval`'s settings: whole documents as chunks.
 * Re-ingesting into an existing store only checks hashes. Returns a cleanup that closes it (and removes a
 * temporary store).
 */
export async function openDatasetStore(
  corpusPath: string,
  store: string | undefined,
  config: QuarryConfigInput = {},
): Promise<{ quarry: Quarry; close: () => void }> {
  const temp = store === undefined ? fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-ltr-')) : undefined;
  const quarry = Quarry.open({
    store: store ?? temp,
    config: {
      ...config,
      chunking: {
        ...config.chunking,
        maxTokens: WHOLE_DOCUMENT_TOKENS,
        overlapTokens: 0,
        parentMaxTokens: WHOLE_DOCUMENT_TOKENS * 4,
      },
      ingest: { ...config.ingest, batchSize: 512 },
    },
  });
  const close = () => {
    quarry.close();
    if (temp !== undefined) fs.rmSync(temp, { recursive: true, force: true });
  };
  try {
    const report = await quarry.ingest([corpusPath]);
    if (report.errors.length > 0 && report.added + report.unchanged + report.updated === 0) {
      throw new QuarryError('DATASET', `${corpusPath}: no document could be ingested`);
    }
  } catch (e) {
    close();
    throw e;
  }
  return { quarry, close };
}

/** A user's own store, as it is (no ingest): training on the feedback recorded against it. */
function openUserStore(store: string, config: QuarryConfigInput = {}): { quarry: Quarry; close: () => void } {
  const quarry = Quarry.open({ store, config, create: false });
  return { quarry, close: () => quarry.close() };
}

export interface JudgedQuery {
  id: string;
  text: string;
  judgments: ReadonlyMap<string, number>;
}

/** Retrieves each query's pool through the search path and turns it into a feature matrix with grades. */
export function buildTrainingPools(
  quarry: Quarry,
  deps: LtrDeps,
  queries: readonly JudgedQuery[],
  opts: {
    retriever: 'bm25' | 'dense' | 'hybrid';
    depth: number;
    onQueries?: (done: number, total: number) => void;
  },
): TrainingQuery[] {
  return queries.map((q, i) => {
    const { hits } = quarry.searchSync(q.text, {
      k: opts.depth,
      collapseDocuments: true,
      retriever: opts.retriever,
      // Training runs on the owner's own store: every document counts.
      principal: TRUSTED_LOCAL,
    });
    if (i % 50 === 0) opts.onQueries?.(i, queries.length);
    return {
      id: q.id,
      rows: extractFeatures(q.text, hits, deps).rows,
      grades: hits.map((h) => Math.max(0, q.judgments.get(h.chunk.docId) ?? 0)),
      ideal: [...q.judgments.values()].filter((g) => g > 0),
    };
  });
}

function fromJudgments(j: Judgments, prefix: string): JudgedQuery[] {
  return [...j].map(([text, judgments], i) => ({ id: `${prefix}${i + 1}`, text, judgments }));
}

export async function trainRanker(options: TrainRankerOptions): Promise<TrainRankerReport> {
  const parsed = TrainRankerOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new QuarryError('INVALID_ARGUMENT', `train-ranker: ${issues}`);
  }
  const opts = parsed.data;
  const trainOpts: TrainOptions = { ...opts.train };
  if (opts.dataset === undefined && (opts.store === undefined || !opts.fromFeedback))
    throw new QuarryError(
      'INVALID_ARGUMENT',
      'train-ranker: give a dataset directory, or --store with --from-feedback to learn from recorded feedback',
    );
  const dataset = opts.dataset === undefined ? undefined : await loadBeirDataset(opts.dataset, opts.split);
  const judged: JudgedQuery[] = (dataset?.queries ?? []).map((q) => ({
    id: q.id,
    text: q.text,
    judgments: dataset!.qrels.get(q.id) ?? new Map(),
  }));
  if (opts.golden !== undefined) judged.push(...fromJudgments(readGoldenSet(opts.golden), 'golden:'));
  if (opts.feedback !== undefined) judged.push(...fromJudgments(readFeedback(opts.feedback), 'feedback:'));

  const { quarry, close } =
    dataset === undefined
      ? openUserStore(opts.store!, options.config)
      : await openDatasetStore(dataset.corpusPath, opts.store, options.config);
  try {
    if (opts.fromFeedback)
      judged.push(...fromJudgments(judgmentsFromVotes(quarry.store.listFeedback()), 'stored:'));
    if (judged.length === 0)
      throw new QuarryError(
        'DATASET',
        'train-ranker: no judged queries (the store has no recorded feedback?)',
      );
    if (opts.retriever !== 'bm25') quarry.dense.ensure();
    const deps = ltrDepsFor(quarry);
    const pools = buildTrainingPools(quarry, deps, judged, {
      retriever: opts.retriever,
      depth: opts.depth,
      onQueries: options.onQueries,
    });
    const result = trainLinearRanker(pools, trainOpts);
    if (result.pairs === 0) {
      throw new QuarryError(
        'DATASET',
        `${dataset?.dir ?? opts.store}: no judged pair in the retrieved pools; nothing to learn`,
      );
    }
    const resolved = TrainOptionsSchema.parse(trainOpts);
    // What the model records about its training and what the caller is told: one set of facts.
    const summary = {
      dataset: dataset?.name ?? null,
      split: dataset?.split ?? null,
      retriever: opts.retriever,
      depth: opts.depth,
      queries: judged.length,
      trainedQueries: result.queries,
      pairs: result.pairs,
    };
    const model: LtrModel = {
      format: 'quarry-ltr',
      version: 1,
      ...result.model,
      trainedOn: {
        ...summary,
        method: resolved.method,
        l2: resolved.l2,
        iterations: resolved.iterations,
        seed: resolved.seed,
        sources: [
          ...(dataset ? ['qrels'] : []),
          ...(opts.golden ? ['golden'] : []),
          ...(opts.feedback ? ['feedback'] : []),
          ...(opts.fromFeedback ? ['stored-feedback'] : []),
        ],
      },
      metrics: {
        'train_ndcg@10_before': round4(result.ndcgBefore),
        'train_ndcg@10_after': round4(result.ndcgAfter),
      },
    };
    const out = path.resolve(opts.out);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify(model, null, 2)}\n`);
    return {
      ...summary,
      ndcgBefore: result.ndcgBefore,
      ndcgAfter: result.ndcgAfter,
      out,
      model,
    };
  } finally {
    close();
  }
}

function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}

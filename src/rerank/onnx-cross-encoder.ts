/**
 * A local ONNX cross-encoder reranker (ms-marco-MiniLM, bge-reranker-base…): each (query, passage) pair is read
 * by the model together, which is why it ranks better than comparing two separately embedded vectors. The model
 * comes from a directory the user provides — nothing is ever downloaded — and runs in a worker-thread pool.
 */
import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import { z } from 'zod';
import { WorkerPool } from '../embed/pool.js';
import { locateOnnxModel, readModelHints, sha256File } from '../embed/providers/onnx.js';
import { createLimiter, type Limiter } from '../embed/types.js';
import { ERRORS, QuarryError } from '../errors.js';
import { passageText, scoreInSlices } from './slices.js';
import type { Reranker, RerankRequest, RerankScore } from './types.js';

export const OnnxRerankerConfigSchema = z
  .object({
    /** Directory holding `model.onnx` (or `onnx/model.onnx`) and `tokenizer.json`. */
    dir: z.string().min(1),
    /** Model file inside `dir` (e.g. `onnx/model_quantized.onnx`); default `model.onnx`, then `onnx/model.onnx`. */
    modelFile: z.string().min(1).optional(),
    /** Worker threads, each with its own inference session. */
    poolSize: z.number().int().min(1).max(64).default(1),
    /** onnxruntime intra-op threads per worker (default: available cores / poolSize, at least 1). */
    threads: z.number().int().min(1).max(256).optional(),
    /** Pairs per inference call. */
    batchSize: z.number().int().min(1).max(1024).default(16),
    /**
     * Tokens per pair including specials (default: sentence_bert_config.json, else tokenizer.json's truncation
     * length, else 512 — capped by config.json's `max_position_embeddings`).
     */
    maxLength: z.number().int().min(8).max(8192).optional(),
    /** Model output holding the logits (default `logits` if present, else the first output). */
    outputName: z.string().min(1).optional(),
    /** `sigmoid` maps scores to 0–1 (the order is the same either way). */
    activation: z.enum(['none', 'sigmoid']).default('none'),
    /** Put the document title in front of the chunk text (for models trained on titled passages). */
    includeTitle: z.boolean().default(false),
  })
  .strict();

export type OnnxRerankerConfig = z.output<typeof OnnxRerankerConfigSchema>;
export type OnnxRerankerOptions = z.input<typeof OnnxRerankerConfigSchema>;

export interface OnnxCrossEncoderInfo {
  inputs: string[];
  outputs: string[];
  output: string;
  /** `single`: one logit per pair; `pair-classes`: two, scored by the positive class's log-odds. */
  outputKind: 'single' | 'pair-classes';
  maxLength: number;
  /** The pair template, e.g. `special:2/0, A/0, special:3/0, B/1, special:3/1` (ids / segment). */
  layout: string[];
  vocabSize: number;
  threadId: number;
}

/** One encoded pair as the model sees it. */
export interface EncodedPair {
  ids: number[];
  /** Segment ids: 0 for the query part, 1 for the passage part (per the tokenizer's pair template). */
  types: number[];
  truncated: boolean;
}

type Task = { kind: 'score' | 'encode'; query: string; passages: string[] };
type Result = { scores?: Float64Array; truncated?: number; pairs?: EncodedPair[]; threadId: number };

const WORKER = new URL('./onnx-cross-encoder-worker.mjs', import.meta.url);

function configError(issues: z.core.$ZodIssue[]): QuarryError {
  const detail = issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  return new QuarryError('INVALID_CONFIG', `ONNX reranker: ${detail}`, { issues });
}

/** The shared embedding plumbing reports embedding codes; a reranker's caller should see rerank codes. */
function asRerankError(e: unknown, model: string): unknown {
  if (!(e instanceof QuarryError)) return e;
  const prefix = `${ERRORS[e.code].message}: `;
  const detail = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
  if (e.code === 'EMBEDDING_MODEL_LOAD')
    return new QuarryError('RERANK_MODEL_LOAD', detail, { ...e.details, model }, e);
  if (e.code === 'EMBEDDING_FAILED')
    return new QuarryError('RERANK_FAILED', detail, { ...e.details, model }, e);
  return e;
}

export class OnnxCrossEncoder implements Reranker {
  private readonly limiter: Limiter;
  private closed = false;
  private batches = 0;
  private truncatedPairs = 0;
  private readonly threads = new Set<number>();

  private constructor(
    readonly id: string,
    readonly modelPath: string,
    private readonly pool: WorkerPool<Task, Result, OnnxCrossEncoderInfo>,
    private readonly config: OnnxRerankerConfig,
  ) {
    // Two batches per worker keep each worker fed while the next batch is posted.
    this.limiter = createLimiter(pool.size * 2);
  }

  /** Validates the options and the directory, hashes the model, and loads it in every worker. */
  static async create(opts: OnnxRerankerOptions): Promise<OnnxCrossEncoder> {
    const parsed = OnnxRerankerConfigSchema.safeParse(opts);
    if (!parsed.success) throw configError(parsed.error.issues);
    const config = parsed.data;
    const root = resolve(config.dir);
    let files: { model: string; tokenizer: string };
    try {
      files = await locateOnnxModel(root, config.modelFile);
    } catch (e) {
      throw asRerankError(e, `onnx:${basename(root)}`);
    }
    const id = `onnx:${basename(root)}@${(await sha256File(files.model)).slice(0, 12)}`;
    const hints = await readModelHints(root);
    const threads = config.threads ?? Math.max(1, Math.floor(availableParallelism() / config.poolSize));
    let pool: WorkerPool<Task, Result, OnnxCrossEncoderInfo>;
    try {
      pool = await WorkerPool.start<Task, Result, OnnxCrossEncoderInfo>({
        script: WORKER,
        size: config.poolSize,
        name: 'quarry-rerank',
        workerData: {
          modelPath: files.model,
          tokenizerPath: files.tokenizer,
          maxLength: config.maxLength ?? hints.maxSeqLength,
          maxPositions: hints.maxPositions,
          threads,
          outputName: config.outputName,
          activation: config.activation,
        },
      });
    } catch (e) {
      throw asRerankError(e, id);
    }
    return new OnnxCrossEncoder(id, files.model, pool, config);
  }

  /** What the model reported when loaded (inputs, output, pair layout, max length). */
  get info(): OnnxCrossEncoderInfo {
    return this.pool.info;
  }

  /** Batches run so far, pairs that had to be truncated, and the worker threads that ran them. */
  stats(): { batches: number; truncatedPairs: number; threadIds: number[] } {
    return { batches: this.batches, truncatedPairs: this.truncatedPairs, threadIds: [...this.threads] };
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new QuarryError('RERANK_FAILED', `reranker ${this.id} is closed`, { reranker: this.id });
    }
  }

  async rerank(request: RerankRequest): Promise<RerankScore[]> {
    this.assertOpen();
    const { signal } = request;
    if (signal?.aborted) throw signal.reason;
    const passages = request.hits.map((h) => passageText(h, this.config.includeTitle));
    if (passages.length === 0) return [];
    try {
      // The first failing batch (or the caller's abort) stops the batches still queued instead of spending
      // worker time on a result nobody will read.
      return await scoreInSlices(
        passages,
        this.config.batchSize,
        this.limiter,
        signal,
        async (batch, sliceSignal) => {
          const r = await this.pool.run(
            { kind: 'score', query: request.query, passages: batch },
            { signal: sliceSignal },
          );
          this.batches++;
          this.truncatedPairs += r.truncated ?? 0;
          this.threads.add(r.threadId);
          const scores = r.scores;
          if (!scores || scores.length !== batch.length) {
            throw new QuarryError(
              'RERANK_FAILED',
              `${this.id} returned ${scores?.length ?? 0} score(s) for ${batch.length} pair(s)`,
              { reranker: this.id },
            );
          }
          return scores;
        },
      );
    } catch (e) {
      if (signal?.aborted) throw e;
      throw asRerankError(e, this.id);
    }
  }

  /**
   * The model inputs for `query` against each passage, exactly as `rerank` feeds them (for traces and for
   * checking a model directory's tokenizer).
   */
  async encode(query: string, passages: string[], signal?: AbortSignal): Promise<EncodedPair[]> {
    this.assertOpen();
    try {
      const r = await this.pool.run({ kind: 'encode', query, passages }, signal ? { signal } : {});
      return r.pairs ?? [];
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw asRerankError(e, this.id);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool.close();
  }
}

/** Loads a local ONNX cross-encoder; see `OnnxRerankerConfigSchema`. */
export function createOnnxCrossEncoder(opts: OnnxRerankerOptions): Promise<OnnxCrossEncoder> {
  return OnnxCrossEncoder.create(opts);
}

/**
 * Local ONNX embedding models from a directory the user provides (`model.onnx` — or `onnx/model.onnx`, the
 * Hugging Face layout — plus `tokenizer.json` with a WordPiece model). Nothing is ever downloaded. Tokenizing,
 * inference, pooling and normalization all run in a worker-thread pool (`onnx-worker.mjs`), never on the event
 * loop. The model id is `onnx:` + the first 12 hex digits of sha256(model file), so a swapped model file is a
 * different model.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { QuarryError } from '../../errors.js';
import { WorkerPool } from '../pool.js';
import { createLimiter, type Embedder, type EmbedOptions, embedInBatches, type Limiter } from '../types.js';

export interface OnnxEmbedderOptions {
  /** Directory holding `model.onnx` (or `onnx/model.onnx`) and `tokenizer.json`. */
  dir: string;
  /** Model file name inside `dir` (e.g. `onnx/model_quantized.onnx`); default: `model.onnx`, then `onnx/model.onnx`. */
  modelFile?: string;
  /** Worker threads, each with its own inference session (default 1). */
  poolSize?: number;
  /** onnxruntime intra-op threads per worker (default: available cores / poolSize, at least 1). */
  threads?: number;
  /** Texts per inference call (default 32). */
  batchSize?: number;
  /**
   * Tokens per text including [CLS]/[SEP]; longer texts are truncated. Default: `max_seq_length` from
   * sentence_bert_config.json, else tokenizer.json's truncation length, else 512 — capped by
   * `max_position_embeddings` from config.json when present.
   */
  maxLength?: number;
  /**
   * `mean` over the attention mask or the first ([CLS]) token. Default: what `1_Pooling/config.json`
   * (sentence-transformers) says, else `mean`. Ignored for already-pooled outputs.
   */
  pooling?: 'mean' | 'cls';
  /** L2-normalize the vectors (default true). */
  normalize?: boolean;
  /** Model output to pool (default `last_hidden_state` if present, else the first output). */
  outputName?: string;
  /** Prepended to queries / documents for models trained with instructions (e5: `query: ` / `passage: `). */
  queryPrefix?: string;
  documentPrefix?: string;
}

export interface OnnxModelInfo {
  dimension: number;
  pooling: 'mean' | 'cls';
  output: string;
  inputs: string[];
  outputs: string[];
  maxLength: number;
  vocabSize: number;
  threadId: number;
}

interface Task {
  texts: string[];
}
interface Result {
  vectors: Float32Array;
  dimension: number;
  threadId: number;
}

const WORKER = new URL('./onnx-worker.mjs', import.meta.url);

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Hex SHA-256 of a file, streamed: model ids follow the weights' bytes, not the directory name. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Locates the model and tokenizer files of a model directory; throws `EMBEDDING_MODEL_LOAD` naming what is missing. */
export async function locateOnnxModel(
  dir: string,
  modelFile?: string,
): Promise<{ model: string; tokenizer: string }> {
  const root = resolve(dir);
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(root);
  } catch {
    throw new QuarryError('EMBEDDING_MODEL_LOAD', `model directory ${root} does not exist`, { dir: root });
  }
  if (!st.isDirectory()) {
    throw new QuarryError('EMBEDDING_MODEL_LOAD', `${root} is not a directory (expected a model directory)`, {
      dir: root,
    });
  }
  const candidates = modelFile
    ? [join(root, modelFile)]
    : [join(root, 'model.onnx'), join(root, 'onnx', 'model.onnx')];
  let model: string | undefined;
  for (const c of candidates) {
    if (await isFile(c)) {
      model = c;
      break;
    }
  }
  if (!model) {
    throw new QuarryError(
      'EMBEDDING_MODEL_LOAD',
      `no ONNX model in ${root}: looked for ${candidates.join(' and ')}` +
        ' (a model directory holds model.onnx and tokenizer.json; Quarry never downloads models)',
      { dir: root, looked: candidates },
    );
  }
  const tokenizer = join(root, 'tokenizer.json');
  if (!(await isFile(tokenizer))) {
    throw new QuarryError(
      'EMBEDDING_MODEL_LOAD',
      `no tokenizer.json in ${root} (the Hugging Face tokenizer file that belongs to the model)`,
      { dir: root, looked: [tokenizer] },
    );
  }
  return { model, tokenizer };
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    const v: unknown = JSON.parse(await readFile(path, 'utf8'));
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // optional files: absent or unreadable means "no hint"
  }
}

const positiveInt = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;

/**
 * Defaults a sentence-transformers export records next to the model: max sequence length
 * (sentence_bert_config.json), position limit (config.json) and pooling mode (1_Pooling/config.json).
 */
export async function readModelHints(
  dir: string,
): Promise<{ maxSeqLength?: number; maxPositions?: number; pooling?: 'mean' | 'cls' }> {
  const root = resolve(dir);
  const [sbert, config, pooling] = await Promise.all([
    readJson(join(root, 'sentence_bert_config.json')),
    readJson(join(root, 'config.json')),
    readJson(join(root, '1_Pooling', 'config.json')),
  ]);
  const hints: { maxSeqLength?: number; maxPositions?: number; pooling?: 'mean' | 'cls' } = {};
  const seq = positiveInt(sbert?.max_seq_length);
  if (seq) hints.maxSeqLength = seq;
  const pos = positiveInt(config?.max_position_embeddings);
  if (pos) hints.maxPositions = pos;
  if (pooling?.pooling_mode_cls_token === true) hints.pooling = 'cls';
  else if (pooling?.pooling_mode_mean_tokens === true) hints.pooling = 'mean';
  return hints;
}

export class OnnxEmbedder implements Embedder {
  readonly dimension: number;
  readonly distinguishesKind: boolean;
  private readonly limiter: Limiter;
  private readonly batchSize: number;
  private closed = false;
  private batches = 0;
  private readonly threads = new Set<number>();

  private constructor(
    readonly id: string,
    readonly modelPath: string,
    private readonly pool: WorkerPool<Task, Result, OnnxModelInfo>,
    private readonly opts: OnnxEmbedderOptions,
  ) {
    this.dimension = pool.info.dimension;
    this.distinguishesKind = Boolean(opts.queryPrefix || opts.documentPrefix);
    this.batchSize = opts.batchSize ?? 32;
    // Two batches per worker keep each worker fed while the next batch is posted.
    this.limiter = createLimiter(pool.size * 2);
  }

  /** Validates the directory, hashes the model, starts the worker pool and loads the model in every worker. */
  static async create(opts: OnnxEmbedderOptions): Promise<OnnxEmbedder> {
    const poolSize = opts.poolSize ?? 1;
    const batchSize = opts.batchSize ?? 32;
    for (const [name, v] of [
      ['poolSize', poolSize],
      ['batchSize', batchSize],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new QuarryError('INVALID_CONFIG', `${name} must be a positive integer, got ${v}`, {
          [name]: v,
        });
      }
    }
    const { model, tokenizer } = await locateOnnxModel(opts.dir, opts.modelFile);
    const id = `onnx:${(await sha256File(model)).slice(0, 12)}`;
    const hints = await readModelHints(opts.dir);
    const threads = opts.threads ?? Math.max(1, Math.floor(availableParallelism() / poolSize));
    const pool = await WorkerPool.start<Task, Result, OnnxModelInfo>({
      script: WORKER,
      size: poolSize,
      name: 'quarry-onnx',
      workerData: {
        modelPath: model,
        tokenizerPath: tokenizer,
        maxLength: opts.maxLength ?? hints.maxSeqLength,
        maxPositions: hints.maxPositions,
        pooling: opts.pooling ?? hints.pooling ?? 'mean',
        normalize: opts.normalize ?? true,
        threads,
        outputName: opts.outputName,
      },
    });
    return new OnnxEmbedder(id, model, pool, { ...opts, batchSize });
  }

  /** What the model reported when loaded (inputs, outputs, dimension, max length). */
  get info(): OnnxModelInfo {
    return this.pool.info;
  }

  /** Batches run so far and the worker threads that ran them (never the main thread). */
  stats(): { batches: number; threadIds: number[] } {
    return { batches: this.batches, threadIds: [...this.threads] };
  }

  async embed(texts: string[], opts: EmbedOptions = {}): Promise<Float32Array[]> {
    if (this.closed)
      throw new QuarryError('EMBEDDING_FAILED', `embedder ${this.id} is closed`, { model: this.id });
    const prefix = (opts.kind === 'query' ? this.opts.queryPrefix : this.opts.documentPrefix) ?? '';
    const inputs = prefix ? texts.map((t) => prefix + t) : texts;
    return embedInBatches(
      inputs,
      this.batchSize,
      this.limiter,
      async (batch, signal) => {
        const r = await this.pool.run({ texts: batch }, { signal });
        this.batches++;
        this.threads.add(r.threadId);
        if (r.dimension !== this.dimension || r.vectors.length !== batch.length * r.dimension) {
          throw new QuarryError(
            'EMBEDDING_FAILED',
            `model ${this.id} returned vectors of dimension ${r.dimension}, expected ${this.dimension}`,
            { model: this.id, expected: this.dimension, actual: r.dimension },
          );
        }
        const d = r.dimension;
        return batch.map((_, i) => r.vectors.slice(i * d, (i + 1) * d));
      },
      opts.signal,
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool.close();
  }
}

/** Loads a local ONNX embedding model; see `OnnxEmbedderOptions`. */
export function createOnnxEmbedder(opts: OnnxEmbedderOptions): Promise<OnnxEmbedder> {
  return OnnxEmbedder.create(opts);
}

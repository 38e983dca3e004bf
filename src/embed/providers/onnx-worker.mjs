// The ONNX inference worker (see ../pool.ts for the protocol). Runs entirely off the main thread: tokenizes,
// runs the model with onnxruntime-node (CPU only, never any network), mean- or CLS-pools the token states
// over the attention mask and L2-normalizes. Plain JavaScript: Node 20 workers do not reliably inherit a
// TypeScript loader.
import { readFileSync } from 'node:fs';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { TokenizerConfigError, WordPieceTokenizer } from './wordpiece.mjs';

/**
 * @typedef {{ modelPath: string; tokenizerPath: string; maxLength?: number; maxPositions?: number; pooling: 'mean' | 'cls';
 *   normalize: boolean; threads: number; outputName?: string }} Init
 */

if (!parentPort) throw new Error('onnx-worker.mjs must run in a worker thread');
const port = parentPort;
/** @type {Init} */
const init = workerData;

/** @param {string} message @param {Record<string, unknown>} [details] */
const loadError = (message, details = {}) => ({ code: 'EMBEDDING_MODEL_LOAD', message, details });

/** @param {unknown} e */
const messageOf = (e) => (e instanceof Error ? e.message : String(e));

let ort;
let session;
let tokenizer;
let output = '';
let useTokenTypes = false;
let dimension = 0;

/**
 * Runs the model on a batch; returns row-major [batch, dimension] pooled, optionally normalized vectors.
 * @param {string[]} texts
 */
async function embed(texts) {
  const enc = tokenizer.encodeBatch(texts);
  const shape = [enc.batch, enc.seqLen];
  const feeds = {
    input_ids: new ort.Tensor('int64', enc.ids, shape),
  };
  if (session.inputNames.includes('attention_mask'))
    feeds.attention_mask = new ort.Tensor('int64', enc.mask, shape);
  if (useTokenTypes) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(enc.ids.length), shape);
  const result = await session.run(feeds, [output]);
  const tensor = result[output];
  if (tensor?.type !== 'float32') {
    throw new Error(`model output "${output}" is not a float32 tensor (got ${tensor?.type})`);
  }
  const data = /** @type {Float32Array} */ (tensor.data);
  const dims = tensor.dims;
  let dim;
  const out = (d) => new Float32Array(enc.batch * d);
  let vectors;
  if (dims.length === 3 && dims[0] === enc.batch && dims[1] === enc.seqLen) {
    // [batch, seq, dim] token states: pool over the attention mask.
    dim = dims[2];
    vectors = out(dim);
    for (let b = 0; b < enc.batch; b++) {
      const row = b * dim;
      if (init.pooling === 'cls') {
        vectors.set(data.subarray(b * enc.seqLen * dim, b * enc.seqLen * dim + dim), row);
        continue;
      }
      let count = 0;
      for (let t = 0; t < enc.seqLen; t++) {
        if (enc.mask[b * enc.seqLen + t] === 0n) continue;
        count++;
        const base = (b * enc.seqLen + t) * dim;
        for (let k = 0; k < dim; k++) vectors[row + k] += data[base + k];
      }
      if (count > 0) for (let k = 0; k < dim; k++) vectors[row + k] /= count;
    }
  } else if (dims.length === 2 && dims[0] === enc.batch) {
    // Already pooled: [batch, dim].
    dim = dims[1];
    vectors = Float32Array.from(data);
  } else {
    throw new Error(
      `model output "${output}" has shape [${dims.join(', ')}]; expected [batch, seq, dim] or [batch, dim]`,
    );
  }
  if (init.normalize) {
    for (let b = 0; b < enc.batch; b++) {
      let sq = 0;
      for (let k = 0; k < dim; k++) sq += vectors[b * dim + k] ** 2;
      if (sq > 0) {
        const inv = 1 / Math.sqrt(sq);
        for (let k = 0; k < dim; k++) vectors[b * dim + k] *= inv;
      }
    }
  }
  return { vectors, dim };
}

async function start() {
  try {
    const json = JSON.parse(readFileSync(init.tokenizerPath, 'utf8'));
    let maxLength = init.maxLength ?? json?.truncation?.max_length ?? 512;
    if (init.maxPositions && maxLength > init.maxPositions) maxLength = init.maxPositions;
    tokenizer = new WordPieceTokenizer(json, { maxLength });
  } catch (e) {
    const why =
      e instanceof TokenizerConfigError || e instanceof SyntaxError
        ? messageOf(e)
        : `cannot read: ${messageOf(e)}`;
    return loadError(`${init.tokenizerPath}: ${why}`, { path: init.tokenizerPath });
  }
  try {
    ort = (await import('onnxruntime-node')).default;
  } catch (e) {
    return loadError(`onnxruntime-node is not installed or cannot load: ${messageOf(e)}`, {});
  }
  try {
    session = await ort.InferenceSession.create(init.modelPath, {
      executionProviders: ['cpu'],
      intraOpNumThreads: init.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    return loadError(`${init.modelPath}: onnxruntime could not load the model: ${messageOf(e)}`, {
      path: init.modelPath,
    });
  }
  if (!session.inputNames.includes('input_ids')) {
    return loadError(
      `${init.modelPath}: the model has no "input_ids" input (inputs: ${session.inputNames.join(', ')})`,
      {
        path: init.modelPath,
        inputs: session.inputNames,
      },
    );
  }
  const known = new Set(['input_ids', 'attention_mask', 'token_type_ids']);
  const unknown = session.inputNames.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    return loadError(
      `${init.modelPath}: the model needs inputs Quarry cannot provide: ${unknown.join(', ')}`,
      {
        path: init.modelPath,
        inputs: session.inputNames,
      },
    );
  }
  useTokenTypes = session.inputNames.includes('token_type_ids');
  if (init.outputName) {
    if (!session.outputNames.includes(init.outputName)) {
      return loadError(
        `${init.modelPath}: the model has no output "${init.outputName}" (outputs: ${session.outputNames.join(', ')})`,
        { path: init.modelPath, outputs: session.outputNames },
      );
    }
    output = init.outputName;
  } else {
    output = session.outputNames.includes('last_hidden_state') ? 'last_hidden_state' : session.outputNames[0];
  }
  try {
    dimension = (await embed(['probe'])).dim;
  } catch (e) {
    return loadError(`${init.modelPath}: a probe inference failed: ${messageOf(e)}`, {
      path: init.modelPath,
    });
  }
  return null;
}

const failure = await start();
if (failure) {
  port.postMessage({ type: 'error', error: failure });
} else {
  port.on('message', async (/** @type {{ id: number; task: { texts: string[] } }} */ m) => {
    try {
      const { vectors, dim } = await embed(m.task.texts);
      if (dim !== dimension) throw new Error(`model output dimension changed from ${dimension} to ${dim}`);
      port.postMessage({ id: m.id, ok: true, result: { vectors, dimension: dim, threadId } }, [
        vectors.buffer,
      ]);
    } catch (e) {
      port.postMessage({
        id: m.id,
        ok: false,
        error: { code: 'EMBEDDING_FAILED', message: `ONNX inference failed: ${messageOf(e)}` },
      });
    }
  });
  port.postMessage({
    type: 'ready',
    info: {
      dimension,
      pooling: init.pooling,
      output,
      inputs: session.inputNames,
      outputs: session.outputNames,
      maxLength: tokenizer.maxLength,
      vocabSize: tokenizer.vocab.size,
      threadId,
    },
  });
}

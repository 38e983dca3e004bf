// The ONNX inference worker (see ../pool.ts for the protocol). Runs entirely off the main thread: tokenizes,
// runs the model with onnxruntime-node (CPU only, never any network), mean- or CLS-pools the token states
// over the attention mask and L2-normalizes. Plain JavaScript: Node 20 workers do not reliably inherit a
// TypeScript loader.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import {
  chooseOutput,
  KNOWN_INPUTS,
  loadTokenizer,
  messageOf,
  openSession,
  probe,
  runFloat32,
} from './onnx-session.mjs';
import { WordPieceTokenizer } from './wordpiece.mjs';

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
  const { data, dims } = await runFloat32(session, feeds, output);
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
  const tok = loadTokenizer(
    init,
    loadError,
    (json, maxLength) => new WordPieceTokenizer(json, { maxLength }),
  );
  if (tok.error) return tok.error;
  tokenizer = tok.value;
  const opened = await openSession(init, loadError);
  if (opened.error) return opened.error;
  ({ ort, session } = opened.value);
  if (!session.inputNames.includes('input_ids')) {
    return loadError(
      `${init.modelPath}: the model has no "input_ids" input (inputs: ${session.inputNames.join(', ')})`,
      {
        path: init.modelPath,
        inputs: session.inputNames,
      },
    );
  }
  const unknown = session.inputNames.filter((n) => !KNOWN_INPUTS.has(n));
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
  const chosen = chooseOutput(session, init, loadError, 'last_hidden_state');
  if (chosen.error) return chosen.error;
  output = chosen.value;
  const probed = await probe(init, loadError, () => embed(['probe']));
  if (probed.error) return probed.error;
  dimension = probed.value.dim;
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

// The cross-encoder inference worker (protocol: ../embed/pool.ts). Runs off the main thread: encodes each
// (query, passage) pair as one BERT input — `[CLS] query [SEP] passage [SEP]` with segment ids — runs the model
// with onnxruntime-node (CPU only, never any network) and turns its logits into one relevance score per pair.
// Plain JavaScript: Node 20 workers do not reliably inherit a TypeScript loader.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import {
  chooseOutput,
  KNOWN_INPUTS,
  loadTokenizer,
  messageOf,
  openSession,
  probe,
  runFloat32,
} from '../embed/providers/onnx-session.mjs';
import { TokenizerConfigError, WordPieceTokenizer } from '../embed/providers/wordpiece.mjs';

/**
 * @typedef {{ modelPath: string; tokenizerPath: string; maxLength?: number; maxPositions?: number;
 *   threads: number; outputName?: string; activation: 'none' | 'sigmoid' }} Init
 * @typedef {{ special: number[]; type: number } | { segment: 'A' | 'B'; type: number }} Piece
 * @typedef {{ kind: 'score' | 'encode'; query: string; passages: string[] }} Task
 */

if (!parentPort) throw new Error('onnx-cross-encoder-worker.mjs must run in a worker thread');
const port = parentPort;
/** @type {Init} */
const init = workerData;

/** @param {string} message @param {Record<string, unknown>} [details] */
const loadError = (message, details = {}) => ({ code: 'RERANK_MODEL_LOAD', message, details });

let ort;
let session;
/** @type {WordPieceTokenizer} */
let tokenizer;
/** @type {Piece[]} */
let layout = [];
let specialCount = 0;
let maxLength = 512;
let output = '';
let useMask = false;
let useTokenTypes = false;
/** @type {'single' | 'pair-classes'} */
let outputKind = 'single';

/**
 * How the tokenizer lays out a pair of sequences: its `pair` template when it has one, else BERT's
 * `<prefix> A <suffix> B <suffix>` with segment 0 for the first part and 1 for the second — what
 * BertProcessing means and what every BERT-family cross-encoder was trained on.
 * @param {any} cfg @returns {Piece[]}
 */
function pairLayout(cfg) {
  if (cfg?.type === 'Sequence') {
    const inner = (cfg.processors ?? []).find((/** @type {any} */ p) => p?.type !== 'ByteLevel');
    return pairLayout(inner);
  }
  if (cfg?.type === 'TemplateProcessing' && Array.isArray(cfg.pair) && cfg.pair.length > 0) {
    /** @type {Piece[]} */
    const pieces = [];
    for (const p of cfg.pair) {
      if (p.Sequence) {
        const seg = p.Sequence.id;
        if (seg !== 'A' && seg !== 'B')
          throw new TokenizerConfigError(`pair template names sequence "${seg}"`);
        pieces.push({ segment: seg, type: p.Sequence.type_id ?? 0 });
      } else if (p.SpecialToken) {
        const name = p.SpecialToken.id;
        const ids = cfg.special_tokens?.[name]?.ids ?? [tokenizer.vocab.get(name)];
        if (ids.some((/** @type {unknown} */ id) => typeof id !== 'number')) {
          throw new TokenizerConfigError(`special token "${name}" is not in the vocabulary`);
        }
        pieces.push({ special: ids, type: p.SpecialToken.type_id ?? 0 });
      }
    }
    if (!pieces.some((p) => 'segment' in p && p.segment === 'B')) {
      throw new TokenizerConfigError('the pair template has no second sequence');
    }
    return pieces;
  }
  const { prefix, suffix } = tokenizer.specials;
  /** @type {Piece[]} */
  const pieces = [];
  if (prefix.length) pieces.push({ special: prefix, type: 0 });
  pieces.push({ segment: 'A', type: 0 });
  if (suffix.length) pieces.push({ special: suffix, type: 0 });
  pieces.push({ segment: 'B', type: 1 });
  if (suffix.length) pieces.push({ special: suffix, type: 1 });
  return pieces;
}

/** WordPiece ids of `text`, at most `cap` of them (long passages stop tokenizing early). */
function tokens(/** @type {string} */ text, /** @type {number} */ cap) {
  /** @type {number[]} */
  const out = [];
  for (const word of tokenizer.preTokenize(tokenizer.normalize(text))) {
    for (const id of tokenizer.wordIds(word)) {
      if (out.length >= cap) return { ids: out, cut: true };
      out.push(id);
    }
  }
  return { ids: out, cut: false };
}

/**
 * One pair within `maxLength`. The passage is truncated first; the query only when it alone would take more
 * than half the room, so a long question still leaves the passage half the window.
 * @param {string} query @param {string} passage
 */
function encodePair(query, passage) {
  const budget = maxLength - specialCount;
  const q = tokens(query, budget);
  const p = tokens(passage, budget);
  const qKeep = Math.min(q.ids.length, budget - Math.min(p.ids.length, Math.ceil(budget / 2)));
  const pKeep = Math.min(p.ids.length, budget - qKeep);
  /** @type {number[]} */
  const ids = [];
  /** @type {number[]} */
  const types = [];
  for (const piece of layout) {
    const part =
      'special' in piece
        ? piece.special
        : piece.segment === 'A'
          ? q.ids.slice(0, qKeep)
          : p.ids.slice(0, pKeep);
    for (const id of part) {
      ids.push(id);
      types.push(piece.type);
    }
  }
  return { ids, types, truncated: p.cut || pKeep < p.ids.length || q.cut || qKeep < q.ids.length };
}

/** @param {string} query @param {string[]} passages */
async function score(query, passages) {
  const pairs = passages.map((p) => encodePair(query, p));
  const batch = pairs.length;
  const seqLen = Math.max(1, ...pairs.map((e) => e.ids.length));
  const ids = new BigInt64Array(batch * seqLen).fill(BigInt(tokenizer.padId));
  const mask = new BigInt64Array(batch * seqLen);
  const types = new BigInt64Array(batch * seqLen);
  pairs.forEach((e, b) => {
    for (let t = 0; t < e.ids.length; t++) {
      ids[b * seqLen + t] = BigInt(e.ids[t]);
      mask[b * seqLen + t] = 1n;
      types[b * seqLen + t] = BigInt(e.types[t]);
    }
  });
  const shape = [batch, seqLen];
  const feeds = { input_ids: new ort.Tensor('int64', ids, shape) };
  if (useMask) feeds.attention_mask = new ort.Tensor('int64', mask, shape);
  if (useTokenTypes) feeds.token_type_ids = new ort.Tensor('int64', types, shape);
  const { data, dims } = await runFloat32(session, feeds, output);
  const scores = new Float64Array(batch);
  if (dims[0] === batch && (dims.length === 1 || (dims.length === 2 && dims[1] === 1))) {
    outputKind = 'single';
    for (let b = 0; b < batch; b++) scores[b] = data[b];
  } else if (dims.length === 2 && dims[0] === batch && dims[1] === 2) {
    // Two classes: the positive class's log-odds, l1 − l0, orders pairs exactly as softmax P(relevant) does.
    outputKind = 'pair-classes';
    for (let b = 0; b < batch; b++) scores[b] = data[2 * b + 1] - data[2 * b];
  } else {
    throw new Error(
      `model output "${output}" has shape [${dims.join(', ')}]; expected [batch, 1] or [batch, 2] logits`,
    );
  }
  for (let b = 0; b < batch; b++) {
    if (init.activation === 'sigmoid') scores[b] = 1 / (1 + Math.exp(-scores[b]));
    if (!Number.isFinite(scores[b])) throw new Error(`the model scored pair ${b} as ${scores[b]}`);
  }
  return { scores, truncated: pairs.filter((e) => e.truncated).length };
}

async function start() {
  const tok = loadTokenizer(init, loadError, (json, windowLength) => {
    maxLength = windowLength;
    tokenizer = new WordPieceTokenizer(json, { maxLength });
    layout = pairLayout(json.post_processor);
    specialCount = layout.reduce((n, p) => n + ('special' in p ? p.special.length : 0), 0);
    if (!Number.isInteger(maxLength) || maxLength < specialCount + 2) {
      throw new TokenizerConfigError(
        `maxLength ${maxLength} leaves no room for a query and a passage besides ${specialCount} special tokens`,
      );
    }
  });
  if (tok.error) return tok.error;
  const opened = await openSession(init, loadError);
  if (opened.error) return opened.error;
  ({ ort, session } = opened.value);
  const unknown = session.inputNames.filter((/** @type {string} */ n) => !KNOWN_INPUTS.has(n));
  if (!session.inputNames.includes('input_ids') || unknown.length > 0) {
    return loadError(
      `${init.modelPath}: a cross-encoder takes input_ids (and optionally attention_mask, token_type_ids); ` +
        `this model takes ${session.inputNames.join(', ')}`,
      { path: init.modelPath, inputs: session.inputNames },
    );
  }
  useMask = session.inputNames.includes('attention_mask');
  useTokenTypes = session.inputNames.includes('token_type_ids');
  const chosen = chooseOutput(session, init, loadError, 'logits');
  if (chosen.error) return chosen.error;
  output = chosen.value;
  // Two pairs, so a model that cannot batch or whose output is not per-pair logits fails now, not per query.
  const probed = await probe(init, loadError, () => score('probe', ['probe', 'a longer probe passage']));
  if (probed.error) return probed.error;
  return null;
}

const failure = await start();
if (failure) {
  port.postMessage({ type: 'error', error: failure });
} else {
  port.on('message', async (/** @type {{ id: number; task: Task }} */ m) => {
    try {
      const { kind, query, passages } = m.task;
      if (kind === 'encode') {
        const pairs = passages.map((p) => encodePair(query, p));
        port.postMessage({ id: m.id, ok: true, result: { pairs, threadId } });
        return;
      }
      const { scores, truncated } = await score(query, passages);
      port.postMessage({ id: m.id, ok: true, result: { scores, truncated, threadId } }, [scores.buffer]);
    } catch (e) {
      port.postMessage({
        id: m.id,
        ok: false,
        error: { code: 'RERANK_FAILED', message: `cross-encoder inference failed: ${messageOf(e)}` },
      });
    }
  });
  port.postMessage({
    type: 'ready',
    info: {
      inputs: session.inputNames,
      outputs: session.outputNames,
      output,
      outputKind,
      maxLength,
      layout: layout.map((p) =>
        'special' in p ? `special:${p.special.join('+')}/${p.type}` : `${p.segment}/${p.type}`,
      ),
      vocabSize: tokenizer.vocab.size,
      threadId,
    },
  });
}

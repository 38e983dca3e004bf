// Model loading shared by the ONNX inference workers (the embedder's onnx-worker.mjs and the reranker's
// onnx-cross-encoder-worker.mjs): the tokenizer file, the onnxruntime session (CPU only, never any network),
// the output choice, the probe inference and the float32 check on each run. Every loader returns
// `{ value }` or `{ error }` (the worker's load error, already shaped for the pool protocol).
// Plain JavaScript: Node 20 workers do not reliably inherit a TypeScript loader.
import { readFileSync } from 'node:fs';
import { TokenizerConfigError } from './wordpiece.mjs';

/**
 * @typedef {{ modelPath: string; tokenizerPath: string; maxLength?: number; maxPositions?: number;
 *   threads: number; outputName?: string }} SessionInit
 * @typedef {(message: string, details?: Record<string, unknown>) => unknown} LoadError
 */

/** @param {unknown} e */
export const messageOf = (e) => (e instanceof Error ? e.message : String(e));

/** The inputs a WordPiece model may take; a model asking for anything else cannot be fed. */
export const KNOWN_INPUTS = new Set(['input_ids', 'attention_mask', 'token_type_ids']);

/**
 * Reads tokenizer.json and hands it to `build` with the window: `maxLength` if set, else the file's truncation
 * length, else 512, never beyond the model's positions. A malformed file or a `TokenizerConfigError` from
 * `build` is the worker's load error.
 * @template T
 * @param {SessionInit} init @param {LoadError} loadError
 * @param {(json: any, maxLength: number) => T} build
 * @returns {{ value: T; error?: undefined } | { error: unknown }}
 */
export function loadTokenizer(init, loadError, build) {
  try {
    const json = JSON.parse(readFileSync(init.tokenizerPath, 'utf8'));
    let maxLength = init.maxLength ?? json?.truncation?.max_length ?? 512;
    if (init.maxPositions && maxLength > init.maxPositions) maxLength = init.maxPositions;
    return { value: build(json, maxLength) };
  } catch (e) {
    const why =
      e instanceof TokenizerConfigError || e instanceof SyntaxError
        ? messageOf(e)
        : `cannot read: ${messageOf(e)}`;
    return { error: loadError(`${init.tokenizerPath}: ${why}`, { path: init.tokenizerPath }) };
  }
}

/**
 * onnxruntime-node and a CPU inference session on the model, single-threaded between operators.
 * @param {SessionInit} init @param {LoadError} loadError
 * @returns {Promise<{ value: { ort: any; session: any }; error?: undefined } | { error: unknown }>}
 */
export async function openSession(init, loadError) {
  let ort;
  try {
    ort = (await import('onnxruntime-node')).default;
  } catch (e) {
    return { error: loadError(`onnxruntime-node is not installed or cannot load: ${messageOf(e)}`, {}) };
  }
  try {
    const session = await ort.InferenceSession.create(init.modelPath, {
      executionProviders: ['cpu'],
      intraOpNumThreads: init.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    return { value: { ort, session } };
  } catch (e) {
    return {
      error: loadError(`${init.modelPath}: onnxruntime could not load the model: ${messageOf(e)}`, {
        path: init.modelPath,
      }),
    };
  }
}

/**
 * The output to read: `init.outputName` when the model has it (else a load error), otherwise `preferred` when
 * the model has that, else its first output.
 * @param {any} session @param {SessionInit} init @param {LoadError} loadError @param {string} preferred
 * @returns {{ value: string; error?: undefined } | { error: unknown }}
 */
export function chooseOutput(session, init, loadError, preferred) {
  if (!init.outputName) {
    return { value: session.outputNames.includes(preferred) ? preferred : session.outputNames[0] };
  }
  if (!session.outputNames.includes(init.outputName)) {
    return {
      error: loadError(
        `${init.modelPath}: the model has no output "${init.outputName}" (outputs: ${session.outputNames.join(', ')})`,
        { path: init.modelPath, outputs: session.outputNames },
      ),
    };
  }
  return { value: init.outputName };
}

/**
 * Runs `infer` once at load time, so a model that cannot do the job fails the load instead of every request.
 * @template T
 * @param {SessionInit} init @param {LoadError} loadError @param {() => Promise<T>} infer
 * @returns {Promise<{ value: T; error?: undefined } | { error: unknown }>}
 */
export async function probe(init, loadError, infer) {
  try {
    return { value: await infer() };
  } catch (e) {
    return {
      error: loadError(`${init.modelPath}: a probe inference failed: ${messageOf(e)}`, {
        path: init.modelPath,
      }),
    };
  }
}

/**
 * Runs the session and returns the one output it was asked for, which must be a float32 tensor.
 * @param {any} session @param {Record<string, unknown>} feeds @param {string} output
 * @returns {Promise<{ data: Float32Array; dims: readonly number[] }>}
 */
export async function runFloat32(session, feeds, output) {
  const result = await session.run(feeds, [output]);
  const tensor = result[output];
  if (tensor?.type !== 'float32') {
    throw new Error(`model output "${output}" is not a float32 tensor (got ${tensor?.type})`);
  }
  return { data: /** @type {Float32Array} */ (tensor.data), dims: tensor.dims };
}

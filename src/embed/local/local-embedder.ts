/**
 * The built-in embedder: no downloaded weights, no network. It is learned from the user's own corpus —
 * LSA (latent topics from term co-occurrence) optionally concatenated with hashed character n-grams
 * (typo- and morphology-tolerant surface similarity). Both parts are L2-normalized and scaled by
 * √(1 − w) and √w, so the concatenation is unit-length and its cosine is
 * `(1 − w)·cos_lsa + w·cos_ngrams`.
 *
 * The id names the model and its trained state (`local-lsa:k256:<hash>`, or `local-lsa+ng:k256+d1024:<hash>`
 * with n-grams): a retrained model is a different model and its vectors are not comparable with the old ones.
 */
import { QuarryError } from '../../errors.js';
import type { Embedder, EmbedOptions } from '../types.js';
import { decodeModel, encodeModel, modelHash } from './codec.js';
import { HashedNgramModel, type HashedNgramOptions } from './hashed-ngrams.js';
import { LsaModel, type LsaOptions } from './lsa.js';

export interface LocalEmbedderOptions {
  lsa?: LsaOptions;
  /** Hashed n-gram options; used only when `ngramWeight` > 0. */
  ngrams?: HashedNgramOptions;
  /** Share w of the n-gram cosine in the combined cosine, 0–1 (0 = LSA only, no n-gram part). Default 0.7. */
  ngramWeight?: number;
}

/**
 * Defaults chosen on scifact train + nfcorpus dev only (bench/dense-quality.ts): LSA k = 256 plus 1,024
 * hashed 3–5-gram buckets with 70 % of the cosine on the n-grams (1,280 dimensions).
 */
export const DEFAULT_LOCAL_EMBEDDER_OPTIONS = {
  lsa: { dimensions: 256 },
  ngrams: { dimension: 1024 },
  ngramWeight: 0.7,
} as const satisfies LocalEmbedderOptions;

interface BundleHeader {
  kind: 'local-embedder';
  ngramWeight: number;
}

const MAGIC = 'QLEM';
const FORMAT = 1;

export class LocalEmbedder implements Embedder {
  readonly id: string;
  readonly dimension: number;
  readonly ngramWeight: number;
  private readonly lsaScale: number;
  private readonly ngramScale: number;
  private bytesCache?: Uint8Array;

  private constructor(
    readonly lsa: LsaModel,
    readonly ngrams: HashedNgramModel | undefined,
    ngramWeight: number,
  ) {
    this.ngramWeight = ngrams === undefined ? 0 : ngramWeight;
    this.lsaScale = Math.sqrt(1 - this.ngramWeight);
    this.ngramScale = Math.sqrt(this.ngramWeight);
    this.dimension = lsa.dimension + (ngrams?.dimension ?? 0);
    const hash = modelHash(new TextEncoder().encode(`${lsa.hash}|${ngrams?.hash ?? ''}|${this.ngramWeight}`));
    this.id =
      ngrams === undefined
        ? `local-lsa:k${lsa.dimension}:${hash}`
        : `local-lsa+ng:k${lsa.dimension}+d${ngrams.dimension}:${hash}`;
  }

  /**
   * Learns the embedder from corpus texts (title and body of each document, joined). Needs the texts twice
   * when n-grams are on, hence an array. Deterministic: same texts and options → same model and id.
   */
  static train(texts: readonly string[], options: LocalEmbedderOptions = {}): LocalEmbedder {
    const w = options.ngramWeight ?? DEFAULT_LOCAL_EMBEDDER_OPTIONS.ngramWeight;
    if (!(w >= 0 && w <= 1)) {
      throw new QuarryError('INVALID_ARGUMENT', `ngramWeight must be within [0, 1], got ${w}`, {
        ngramWeight: w,
      });
    }
    const lsa = LsaModel.train(texts, { ...DEFAULT_LOCAL_EMBEDDER_OPTIONS.lsa, ...options.lsa });
    const ngrams =
      w > 0
        ? HashedNgramModel.train(texts, { ...DEFAULT_LOCAL_EMBEDDER_OPTIONS.ngrams, ...options.ngrams })
        : undefined;
    return new LocalEmbedder(lsa, ngrams, w);
  }

  /** Combines already-trained parts (e.g. to try several n-gram weights without retraining). */
  static fromModels(lsa: LsaModel, ngrams?: HashedNgramModel, ngramWeight = 0): LocalEmbedder {
    if (!(ngramWeight >= 0 && ngramWeight <= 1)) {
      throw new QuarryError('INVALID_ARGUMENT', `ngramWeight must be within [0, 1], got ${ngramWeight}`);
    }
    return new LocalEmbedder(lsa, ngramWeight > 0 ? ngrams : undefined, ngramWeight);
  }

  /** Synchronous embedding for the query hot path: unit length (or all zeros for a text with no known term). */
  embedSync(text: string): Float32Array {
    const out = new Float32Array(this.dimension);
    if (this.ngrams === undefined) {
      this.lsa.embedTermsInto(this.lsa.analyze(text), out, 0, 1);
      return out;
    }
    this.lsa.embedTermsInto(this.lsa.analyze(text), out, 0, this.lsaScale);
    this.ngrams.embedInto(text, out, this.lsa.dimension, this.ngramScale);
    // Renormalize: one part may be all zeros (no known term / no n-gram).
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i]! * out[i]!;
    if (s > 0 && Math.abs(s - 1) > 1e-6) {
      const f = 1 / Math.sqrt(s);
      for (let i = 0; i < out.length; i++) out[i]! *= f;
    }
    return out;
  }

  /** The model is symmetric: queries and documents are embedded alike. */
  async embed(texts: string[], _opts?: EmbedOptions): Promise<Float32Array[]> {
    return texts.map((t) => this.embedSync(t));
  }

  serialize(): Uint8Array {
    if (this.bytesCache === undefined) {
      const lsa = this.lsa.serialize();
      const ng = this.ngrams?.serialize() ?? new Uint8Array(0);
      const header: BundleHeader = { kind: 'local-embedder', ngramWeight: this.ngramWeight };
      this.bytesCache = encodeModel(MAGIC, FORMAT, header, [lsa, ng]);
    }
    return this.bytesCache;
  }

  static deserialize(bytes: Uint8Array): LocalEmbedder {
    const { header, sections } = decodeModel<BundleHeader>(bytes, MAGIC, FORMAT);
    const [lsaSec, ngSec] = sections;
    if (
      header.kind !== 'local-embedder' ||
      !(lsaSec instanceof Uint8Array) ||
      !(ngSec instanceof Uint8Array)
    ) {
      throw new QuarryError('INVALID_ARGUMENT', 'not a valid QLEM model: inconsistent sections');
    }
    const lsa = LsaModel.deserialize(lsaSec);
    const ngrams = ngSec.length > 0 ? HashedNgramModel.deserialize(ngSec) : undefined;
    const embedder = new LocalEmbedder(lsa, ngrams, header.ngramWeight);
    embedder.bytesCache = bytes;
    return embedder;
  }
}

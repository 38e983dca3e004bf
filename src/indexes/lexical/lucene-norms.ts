/**
 * Lucene's one-byte document-length encoding (SmallFloat.intToByte4 / byte4ToInt), which its BM25Similarity
 * uses for length normalization. Reproducing it is what makes Quarry's scores line up with Anserini's
 * published BM25 figures rather than merely approximate them.
 */

function longToInt4(i: number): number {
  const numBits = i === 0 ? 0 : 32 - Math.clz32(i);
  if (numBits < 4) return i; // subnormal
  const shift = numBits - 4;
  let encoded = (i >>> shift) & 0x07; // keep 4 significant bits, drop the implicit leading one
  encoded |= (shift + 1) << 3;
  return encoded;
}

function int4ToLong(i: number): number {
  const bits = i & 0x07;
  const shift = (i >>> 3) - 1;
  return shift === -1 ? bits : (bits | 0x08) * 2 ** shift;
}

const MAX_INT4 = longToInt4(0x7fffffff);
const NUM_FREE_VALUES = 255 - MAX_INT4;

/** Encode a field length (token count) into Lucene's lossy byte. */
export function lengthToByte(length: number): number {
  if (length < NUM_FREE_VALUES) return length;
  return NUM_FREE_VALUES + longToInt4(Math.min(length, 0x7fffffff) - NUM_FREE_VALUES);
}

/** Decode Lucene's length byte back to the length BM25 sees. */
export function byteToLength(b: number): number {
  if (b < NUM_FREE_VALUES) return b;
  return NUM_FREE_VALUES + int4ToLong(b - NUM_FREE_VALUES);
}

/** The 256 decoded lengths, computed once. */
export const LENGTH_TABLE: Float64Array = (() => {
  const t = new Float64Array(256);
  for (let i = 0; i < 256; i++) t[i] = byteToLength(i);
  return t;
})();

/** Generated corpora for benchmarks: realistic vocabulary and term statistics at any size, no download. */

export interface Doc {
  id: string;
  title: string;
  text: string;
}

/**
 * Passages sampled from scifact's own word distribution (Zipf-like, real vocabulary) in short contiguous runs,
 * with lengths uniform in [mean/3, 5·mean/3] words. Query cost grows with posting lengths, i.e. with `mean`.
 */
export function generatePassages(source: Doc[], n: number, mean: number): Doc[] {
  const words: string[] = [];
  for (const d of source) for (const w of `${d.title} ${d.text}`.split(/\s+/)) if (w) words.push(w);
  let seed = 12345;
  const rand = (): number => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const out: Doc[] = [];
  for (let i = 0; i < n; i++) {
    const len = Math.round(mean / 3 + rand() * ((4 * mean) / 3));
    // Contiguous runs keep local co-occurrence realistic; several runs per passage mix topics.
    const parts: string[] = [];
    while (parts.length < len) {
      const start = Math.floor(rand() * (words.length - 20));
      const run = 5 + Math.floor(rand() * 15);
      for (let j = 0; j < run && parts.length < len; j++) parts.push(words[start + j]!);
    }
    out.push({ id: `p${i}`, title: '', text: parts.join(' ') });
  }
  return out;
}

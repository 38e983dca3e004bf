/**
 * Answer-quality metrics for `quarry eval`: exact match and token F1 against gold answers with SQuAD's
 * normalisation (so figures compare with the published SQuAD evaluation script), and citation precision and
 * recall against the documents a golden set expects the answer to cite. Pure functions, no index needed.
 */

const ARTICLES = /\b(?:a|an|the)\b/g;
// SQuAD strips ASCII punctuation (Python's string.punctuation); Unicode punctuation is stripped too, so
// typographic quotes and dashes do not keep "“Paris”" from matching "Paris".
const PUNCTUATION = /[\p{P}\p{S}]/gu;

/**
 * SQuAD v1.1 answer normalisation: lower-case, drop punctuation, drop the articles a/an/the, collapse
 * whitespace. The order is the official script's (punctuation before articles, so "the-end" → "theend").
 */
export function normalizeSquad(text: string): string {
  return text.toLowerCase().replace(PUNCTUATION, '').replace(ARTICLES, ' ').replace(/\s+/g, ' ').trim();
}

/** 1 when the normalised prediction equals one of the normalised gold answers, else 0. */
export function exactMatch(prediction: string, gold: readonly string[]): number {
  const p = normalizeSquad(prediction);
  return gold.some((g) => normalizeSquad(g) === p) ? 1 : 0;
}

function f1(prediction: string, gold: string): number {
  const p = normalizeSquad(prediction).split(' ').filter(Boolean);
  const g = normalizeSquad(gold).split(' ').filter(Boolean);
  // Both empty (e.g. gold "the"): SQuAD counts equal empties as a match.
  if (p.length === 0 || g.length === 0) return p.length === g.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let common = 0;
  for (const t of p) {
    const n = counts.get(t) ?? 0;
    if (n > 0) {
      common++;
      counts.set(t, n - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / p.length;
  const recall = common / g.length;
  return (2 * precision * recall) / (precision + recall);
}

/** Token F1 (multiset overlap of normalised tokens), the maximum over the gold answers; 0 without gold. */
export function tokenF1(prediction: string, gold: readonly string[]): number {
  let best = 0;
  for (const g of gold) best = Math.max(best, f1(prediction, g));
  return best;
}

/** The answer text a reader sees, without citation markers (`[1]`, `[2, 3]`): what EM and F1 compare. */
export function answerProse(text: string): string {
  return text
    .replace(/\s*\[\d+(?:\s*[,;]\s*\d+)*\]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

export interface CitationScore {
  /** Share of the distinct cited documents that are expected; undefined when nothing is cited. */
  precision: number | undefined;
  /** Share of the expected documents that are cited; undefined when nothing is expected. */
  recall: number | undefined;
}

/** Citation precision and recall over distinct document ids. */
export function citationScore(cited: readonly string[], expected: readonly string[]): CitationScore {
  const c = new Set(cited);
  const e = new Set(expected);
  let both = 0;
  for (const d of c) if (e.has(d)) both++;
  return {
    precision: c.size === 0 ? undefined : both / c.size,
    recall: e.size === 0 ? undefined : both / e.size,
  };
}

/**
 * Query understanding, the first stage of a search: normalize the text, pull out exact-match entities (error
 * codes, IDs, versions, quoted phrases), classify intent (which sets retriever weights and how many results
 * to fetch), and correct typos against the index vocabulary. Each step is switchable and reports into the
 * trace; none needs a model. LLM rewriting and decomposition plug in here once an LLM is configured.
 */

export type EntityKind = 'quoted' | 'error-code' | 'identifier' | 'version' | 'path';

export interface QueryEntity {
  kind: EntityKind;
  text: string;
  /**
   * Routed to verbatim matching: quoted phrases and unmistakable codes (ERR_X_Y, 0x…, HTTP 503). Short
   * letter-digit ids such as IL-6 or K164 are ambiguous in prose (genes, residues) and only inform intent.
   */
  exact: boolean;
}

export type Intent =
  | 'factual'
  | 'navigational'
  | 'procedural'
  | 'troubleshooting'
  | 'comparison'
  | 'exploratory';

export interface IntentDecision {
  intent: Intent;
  /** The rule that fired (for the trace). */
  rule: string;
  /** Retriever weights for fusion and the candidate depth this intent wants. */
  weights: { bm25: number; dense: number };
  k: number;
}

export interface TypoCorrection {
  from: string;
  to: string;
  distance: number;
}

export interface QueryUnderstandingOptions {
  normalize?: boolean;
  entities?: boolean;
  intent?: boolean;
  typos?: boolean;
}

export interface QueryPlan {
  original: string;
  normalized: string;
  entities: QueryEntity[];
  intent: IntentDecision | null;
  corrections: TypoCorrection[];
  /** Analyzed terms to search with (after corrections). */
  terms: string[];
  steps: Record<keyof Required<QueryUnderstandingOptions>, boolean>;
}

/** What typo correction needs from the lexical index. */
export interface Vocabulary {
  /** Document frequency of an analyzed term (0 = unknown). */
  df(term: string): number;
  /** All indexed terms of a given length. */
  termsOfLength(length: number): readonly string[];
  /** Indexed terms that may lie within `maxDistance` edits of `term` (a superset; verified by the caller). */
  candidates?(term: string, maxDistance: number): Iterable<string>;
}

/** NFKC (full-width letters, ligatures, compatibility forms), no control characters, single spaces. */
export function normalizeQuery(q: string): string {
  return q
    .normalize('NFKC')
    .replace(/[\p{Cc}\p{Cf}]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

const ENTITY_PATTERNS: Array<{ kind: EntityKind; re: RegExp }> = [
  { kind: 'quoted', re: /"([^"]{2,200})"|“([^”]{2,200})”|'([^']{3,200})'(?!\w)/g },
  // ERR_CONNECTION_RESET, E1234, ORA-00942, HTTP 503, 0x80070005, SQLSTATE 23505
  {
    kind: 'error-code',
    re: /\b(?:[A-Z][A-Z0-9]*_[A-Z0-9_]{2,}|[A-Z]{1,5}-?\d{3,6}|0x[0-9A-Fa-f]{4,16}|HTTP\s?[1-5]\d\d|SQLSTATE\s?[0-9A-Z]{5})\b/g,
  },
  // A version has a `v` prefix or at least two dots: plain decimals ("2.5 mg") are numbers, not versions.
  { kind: 'version', re: /\b(?:v\d+(?:\.\d+){1,3}|\d+\.\d+\.\d+(?:\.\d+)?)(?:[-+][0-9A-Za-z.]+)?\b/g },
  // UUIDs and ticket-style ids (ABC-123 is matched as error-code above only when letters ≤ 5 and digits ≥ 3).
  {
    kind: 'identifier',
    // Case-sensitive: JIRA-42 is a ticket, "type-2" or "il-6" in prose is not.
    re: /\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b|\b[A-Z][A-Z0-9]+-\d+\b/g,
  },
  { kind: 'path', re: /(?:^|\s)((?:\.{0,2}\/)?[\w.-]+(?:\/[\w.-]+)+\.\w{1,6})\b/g },
];

function isUnambiguous(kind: EntityKind, text: string): boolean {
  if (kind === 'quoted' || kind === 'path') return true;
  if (kind === 'error-code') return /_|^0x|^HTTP|^SQLSTATE/i.test(text);
  return false;
}

/** Exact-match entities, in order of appearance, without duplicates. */
export function extractEntities(q: string): QueryEntity[] {
  const found: Array<{ kind: EntityKind; text: string; at: number }> = [];
  const taken: Array<[number, number]> = [];
  for (const { kind, re } of ENTITY_PATTERNS) {
    re.lastIndex = 0;
    for (let m = re.exec(q); m !== null; m = re.exec(q)) {
      const text = (m[1] ?? m[2] ?? m[3] ?? m[0]).trim();
      const at = m.index + m[0].indexOf(text);
      const end = at + text.length;
      // A version inside an error code or a quoted phrase is not a separate entity.
      if (taken.some(([s, e]) => at < e && end > s)) continue;
      taken.push([at, end]);
      found.push({ kind, text, at });
    }
  }
  const seen = new Set<string>();
  return found
    .sort((a, b) => a.at - b.at)
    .filter((e) => !seen.has(`${e.kind}:${e.text}`) && seen.add(`${e.kind}:${e.text}`))
    .map(({ kind, text }) => ({ kind, text, exact: isUnambiguous(kind, text) }));
}

const INTENT_RULES: Array<{ intent: Intent; rule: string; re: RegExp }> = [
  {
    intent: 'troubleshooting',
    rule: 'error/failure words',
    re: /\b(error|fails?|failed|failing|exception|crash(es|ed)?|broken|not working|doesn'?t work|timeout|denied|refused|stack ?trace|bug|issue|fix)\b/i,
  },
  {
    intent: 'procedural',
    rule: 'how-to / steps',
    re: /^(how (do|can|should|to)|steps? to|guide to|set ?up|install|configure|enable|create|delete|remove)\b|\bhow to\b/i,
  },
  {
    intent: 'comparison',
    rule: 'comparison words',
    re: /\b(vs\.?|versus|compared? (to|with)|difference between|better than|or)\b.*\?*$/i,
  },
  {
    intent: 'navigational',
    rule: 'looking for a page',
    re: /\b(docs?|documentation|page|link|section|readme|where is|find the)\b/i,
  },
  {
    intent: 'factual',
    rule: 'wh-question',
    re: /^(what|which|who|when|where|why|is|are|does|do|can|how (many|much|long|big))\b/i,
  },
];

/**
 * Intent drives fusion: exact, code-heavy questions (troubleshooting, navigational) lean on BM25; open,
 * paraphrase-prone ones (exploratory, comparison) give dense retrieval more say and fetch more candidates.
 */
const INTENT_SETTINGS: Record<Intent, { weights: { bm25: number; dense: number }; k: number }> = {
  troubleshooting: { weights: { bm25: 0.85, dense: 0.15 }, k: 10 },
  navigational: { weights: { bm25: 0.85, dense: 0.15 }, k: 5 },
  procedural: { weights: { bm25: 0.75, dense: 0.25 }, k: 10 },
  factual: { weights: { bm25: 0.75, dense: 0.25 }, k: 10 },
  comparison: { weights: { bm25: 0.65, dense: 0.35 }, k: 20 },
  exploratory: { weights: { bm25: 0.7, dense: 0.3 }, k: 20 },
};

export function classifyIntent(q: string, entities: QueryEntity[] = []): IntentDecision {
  if (entities.some((e) => e.kind === 'error-code')) {
    return { intent: 'troubleshooting', rule: 'error code present', ...INTENT_SETTINGS.troubleshooting };
  }
  for (const r of INTENT_RULES) {
    if (r.re.test(q)) return { intent: r.intent, rule: r.rule, ...INTENT_SETTINGS[r.intent] };
  }
  return { intent: 'exploratory', rule: 'default', ...INTENT_SETTINGS.exploratory };
}

/** Optimal-string-alignment distance (Levenshtein + adjacent transposition), giving up above `max`. */
export function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  const n = b.length;
  let prev2 = new Array<number>(n + 1).fill(0);
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  let cur = new Array<number>(n + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    let rowMin = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, prev2[j - 2]! + 1);
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[n]!;
}

/**
 * Replace analyzed terms the index has never seen with the most frequent indexed term one edit away.
 * Known terms, numbers and very short terms are left alone.
 */
export function correctTypos(
  terms: string[],
  vocab: Vocabulary,
): { terms: string[]; corrections: TypoCorrection[] } {
  const corrections: TypoCorrection[] = [];
  const out = terms.map((t) => {
    if (t.length < 4 || /\d/.test(t) || vocab.df(t) > 0) return t;
    // One edit (insert, delete, substitute or swap adjacent letters): the deletion index finds every such
    // neighbour exactly; two edits would need the vocabulary's two-letter deletions too (~30 per term).
    const max = 1;
    let best: { term: string; distance: number; df: number } | undefined;
    const consider = (cand: string): void => {
      const d = editDistance(t, cand, max);
      if (d > max || d === 0) return;
      const df = vocab.df(cand);
      if (best === undefined || d < best.distance || (d === best.distance && df > best.df)) {
        best = { term: cand, distance: d, df };
      }
    };
    if (vocab.candidates !== undefined) {
      for (const cand of vocab.candidates(t, max)) consider(cand);
    } else {
      for (let len = t.length - max; len <= t.length + max; len++)
        for (const cand of vocab.termsOfLength(len)) consider(cand);
    }
    if (best === undefined) return t;
    corrections.push({ from: t, to: best.term, distance: best.distance });
    return best.term;
  });
  return { terms: out, corrections };
}

export function understandQuery(
  query: string,
  deps: { analyze(text: string): string[]; vocabulary?: Vocabulary },
  opts: QueryUnderstandingOptions = {},
): QueryPlan {
  const steps = {
    normalize: opts.normalize ?? true,
    entities: opts.entities ?? true,
    intent: opts.intent ?? true,
    typos: opts.typos ?? true,
  };
  const normalized = steps.normalize ? normalizeQuery(query) : query;
  const entities = steps.entities ? extractEntities(normalized) : [];
  const intent = steps.intent ? classifyIntent(normalized, entities) : null;
  let terms = deps.analyze(normalized);
  let corrections: TypoCorrection[] = [];
  if (steps.typos && deps.vocabulary !== undefined)
    ({ terms, corrections } = correctTypos(terms, deps.vocabulary));
  return { original: query, normalized, entities, intent, corrections, terms, steps };
}

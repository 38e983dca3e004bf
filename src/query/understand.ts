/**
 * Query understanding, the first stage of a search: normalize the text, pull out exact-match entities (error
 * codes, IDs, versions, quoted phrases), classify intent (which sets retriever weights and how many results
 * to fetch), and correct typos against the index vocabulary and an English dictionary (spelling.ts). Each
 * step is switchable and reports into the trace; none needs a model. LLM rewriting and decomposition plug in here once an LLM is configured.
 */

import { englishWords, type WordList } from './dictionary.js';
import { correctQuery, type QueryRewrite, type TypoCorrection, type Vocabulary } from './spelling.js';

export {
  correctTypos,
  editDistance,
  type QueryRewrite,
  type TypoCorrection,
  type Vocabulary,
} from './spelling.js';

export type EntityKind = 'quoted' | 'error-code' | 'identifier' | 'version' | 'path';

export interface QueryEntity {
  kind: EntityKind;
  text: string;
  /**
   * Routed to verbatim matching: quoted phrases, quoted codes and identifiers, and unmistakable codes
   * (ERR_X_Y, 0x…, HTTP 503). Short letter-digit ids such as IL-6 or K164 are ambiguous in prose (genes,
   * residues) and only inform intent. A quoted plain word ("float") is not: every document containing it
   * would rank above all others; it gets `boost` instead.
   */
  exact: boolean;
  /** BM25 weight of the entity's terms (a quoted plain word counts this many times; absent = 1). */
  boost?: number;
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
  /** BM25 weights parallel to `terms`, when some differ from 1 (boosted quoted words). */
  weights?: number[];
  /** How the query was rewritten (typo corrections), in the user's words; absent when searched as written. */
  rewrite?: QueryRewrite;
  steps: Record<keyof Required<QueryUnderstandingOptions>, boolean>;
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

/** Quoted text that must match verbatim: several words, or a code or identifier (digits, `_.-/:#@`, camelCase, ALLCAPS). */
function isVerbatimQuote(text: string): boolean {
  return /\s|[\d_./\\:#@-]|\p{Ll}\p{Lu}|^\p{Lu}{2,}$/u.test(text);
}

/** Weight of a quoted plain word's terms in BM25: it matters more than the other words, but ranks. */
export const QUOTED_WORD_BOOST = 2;

function isUnambiguous(kind: EntityKind, text: string): boolean {
  if (kind === 'path') return true;
  if (kind === 'quoted') return isVerbatimQuote(text);
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
    .map(({ kind, text }) => {
      const exact = isUnambiguous(kind, text);
      return kind === 'quoted' && !exact
        ? { kind, text, exact, boost: QUOTED_WORD_BOOST }
        : { kind, text, exact };
    });
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

/** BM25 weights parallel to `terms` from boosted entities; undefined when every weight is 1. */
function termWeights(
  terms: string[],
  entities: QueryEntity[],
  analyze: (t: string) => string[],
): number[] | undefined {
  const boost = new Map<string, number>();
  for (const e of entities)
    if (e.boost !== undefined)
      for (const t of analyze(e.text)) boost.set(t, Math.max(boost.get(t) ?? 1, e.boost));
  if (!terms.some((t) => boost.has(t))) return undefined;
  return terms.map((t) => boost.get(t) ?? 1);
}

export interface UnderstandDeps {
  analyze(text: string): string[];
  vocabulary?: Vocabulary;
  /** The dictionary typo correction consults; default: the English word list, loaded on first need. */
  dictionary?: () => WordList;
}

export function understandQuery(
  query: string,
  deps: UnderstandDeps,
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
  let rewrite: QueryRewrite | undefined;
  if (steps.typos && deps.vocabulary !== undefined) {
    const quoted = entities.filter((e) => e.kind === 'quoted').map((e) => e.text);
    ({ terms, corrections, rewrite } = correctQuery(query.trim(), normalized, terms, quoted, {
      analyze: deps.analyze,
      vocabulary: deps.vocabulary,
      dictionary: deps.dictionary ?? englishWords,
    }));
  }
  const weights = termWeights(terms, entities, deps.analyze);
  return {
    original: query,
    normalized,
    entities,
    intent,
    corrections,
    terms,
    ...(weights === undefined ? {} : { weights }),
    ...(rewrite === undefined ? {} : { rewrite }),
    steps,
  };
}

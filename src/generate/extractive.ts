/**
 * The answerer Quarry uses when no LLM is configured: it quotes the sentences of the top chunks that best
 * cover the question, each with a citation to its exact span, and abstains when the retrieved text does not
 * cover the question well enough: too little of the question in the quoted sentences, or in the passage the
 * first of them comes from (a near miss: a passage on the topic that does not hold the answer). Quoting (not
 * paraphrasing) makes every cited span verifiable. Confidence is the support, scaled down when the quotes
 * do not address the question (see src/validate/relevance.ts): no answer of the kind a wh-question asks for,
 * or nothing the question did not already say.
 */
import type { Citation, SearchHit } from '../types.js';
import {
  type AnswerType,
  expectedAnswerType,
  hasAnswerType,
  NO_NEW_CONTENT_FACTOR,
  questionTerms,
  TYPE_MISS_FACTOR,
} from '../validate/relevance.js';

export const NOT_ENOUGH_INFORMATION =
  "I don't have enough information in the indexed documents to answer that question.";

export interface SentenceSpan {
  /** Offsets relative to the chunk text (end exclusive). */
  start: number;
  end: number;
  text: string;
}

export interface ExtractiveOptions {
  /** Chunks (top of the ranking) to read sentences from. */
  topChunks: number;
  /** Token budget for the quoted sentences. */
  maxTokens: number;
  /** Minimum idf-weighted share of question terms the chosen sentences must contain. */
  minSupport: number;
  /** Minimum idf-weighted share of question terms the first quoted sentence's passage must contain. */
  minPassageCoverage?: number;
  /** At most this many sentences. */
  maxSentences?: number;
}

export interface ExtractiveDeps {
  analyze(text: string): string[];
  idf(term: string): number;
  countTokens(text: string): number;
}

export interface ScoredSentence extends SentenceSpan {
  hit: SearchHit;
  score: number;
  coverage: number;
  matched: string[];
  /** Question terms found only in the chunk's title or section path. */
  contextMatched: string[];
}

export interface ExtractiveResult {
  text: string;
  citations: Citation[];
  abstained: boolean;
  confidence: number;
  /** For the trace: the best-scoring sentences considered, chosen or not. */
  considered: ScoredSentence[];
  support: number;
  /** Idf-weighted share of question terms in the first quoted sentence's chunk (with its title and section path). */
  passageCoverage: number;
  /** Why it abstained (absent when it answered). */
  abstainReason?: 'no-match' | 'low-support' | 'near-miss';
  /** How the quotes address the question (absent when it abstained). */
  relevance?: { expectedType: AnswerType | null; typeMatch: boolean; novel: boolean };
  tokens: number;
}

let sentenceSegmenter: Intl.Segmenter | undefined;

// Markdown block markers are not part of a sentence's claim; skip them so quotes read as prose.
const LEADING_MARKUP = /^(?:\s|#{1,6}\s|[-*+]\s|\d{1,3}[.)]\s|>\s?|\|)+/;
const HEADING_LINE = /^#{1,6}\s/;

/** Sentences of `text` with exact offsets, markup trimmed, one line at most per sentence. */
export function splitSentences(text: string): SentenceSpan[] {
  sentenceSegmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
  const out: SentenceSpan[] = [];
  for (const seg of sentenceSegmenter.segment(text)) {
    // Segments can span several lines of Markdown (a heading followed by a line); split at newlines.
    let lineStart = seg.index;
    const segEnd = seg.index + seg.segment.length;
    for (let i = seg.index; i <= segEnd; i++) {
      if (i < segEnd && text.charCodeAt(i) !== 10) continue;
      let s = lineStart;
      let e = i;
      const raw = text.slice(s, e);
      if (HEADING_LINE.test(raw.trimStart())) {
        lineStart = i + 1;
        continue;
      }
      const lead = LEADING_MARKUP.exec(raw);
      if (lead) s += lead[0].length;
      while (e > s && /[\s|]/.test(text[e - 1]!)) e--;
      if (e - s >= 12) out.push({ start: s, end: e, text: text.slice(s, e) });
      lineStart = i + 1;
    }
  }
  return out;
}

export function answerExtractively(
  question: string,
  hits: SearchHit[],
  opts: ExtractiveOptions,
  deps: ExtractiveDeps,
): ExtractiveResult {
  // Wh-words and auxiliaries say what kind of question it is, not what it is about; in a small corpus that
  // never uses them their idf is the highest of all and would make every answer look unsupported.
  const topical = questionTerms(question, deps);
  const qTerms = topical.length > 0 ? topical : [...new Set(deps.analyze(question))];
  const weights = new Map(qTerms.map((t) => [t, Math.max(deps.idf(t), 0.05)]));
  const totalWeight = [...weights.values()].reduce((a, b) => a + b, 0);
  const abstain = (
    considered: ScoredSentence[],
    support: number,
    reason: NonNullable<ExtractiveResult['abstainReason']>,
    passageCoverage = 0,
  ): ExtractiveResult => ({
    text: NOT_ENOUGH_INFORMATION,
    citations: [],
    abstained: true,
    confidence: 0,
    considered,
    support,
    passageCoverage,
    abstainReason: reason,
    tokens: 0,
  });
  if (qTerms.length === 0 || hits.length === 0) return abstain([], 0, 'no-match');

  const scored = scoreSentences(hits.slice(0, opts.topChunks), qTerms, weights, totalWeight, deps);
  const considered = scored.slice(0, 10);
  if (scored.length === 0) return abstain(considered, 0, 'no-match');
  const { chosen, support, tokens } = selectSentences(scored, weights, totalWeight, opts, deps);
  const passageCoverage = coverageOfPassage(chosen[0]!.hit, weights, totalWeight, deps);
  if (support < opts.minSupport) return abstain(considered, support, 'low-support', passageCoverage);
  if (passageCoverage < (opts.minPassageCoverage ?? 0))
    return abstain(considered, support, 'near-miss', passageCoverage);
  const { text, citations } = cite(chosen);
  const quoted = chosen.map((s) => s.text).join(' ');
  const relevance = addressesQuestion(question, quoted, qTerms, deps);
  const factor = (relevance.typeMatch ? 1 : TYPE_MISS_FACTOR) * (relevance.novel ? 1 : NO_NEW_CONTENT_FACTOR);
  return {
    text,
    citations,
    abstained: false,
    confidence: Math.round(Math.min(1, support) * factor * 1000) / 1000,
    considered,
    support,
    passageCoverage,
    relevance,
    tokens,
  };
}

/** Idf-weighted share of the question's terms in a hit's chunk text, title and section path. */
function coverageOfPassage(
  hit: SearchHit,
  weights: ReadonlyMap<string, number>,
  totalWeight: number,
  deps: ExtractiveDeps,
): number {
  const present = new Set(
    deps.analyze(`${hit.chunk.text} ${hit.document.title} ${hit.chunk.sectionPath.join(' ')}`),
  );
  let found = 0;
  for (const [t, w] of weights) if (present.has(t)) found += w;
  return totalWeight === 0 ? 0 : found / totalWeight;
}

/** Whether the quotes hold the kind of answer the question asks for, and say anything it did not. */
function addressesQuestion(
  question: string,
  quoted: string,
  qTerms: readonly string[],
  deps: ExtractiveDeps,
): NonNullable<ExtractiveResult['relevance']> {
  const expectedType = expectedAnswerType(question);
  const typeMatch = expectedType === null || hasAnswerType(quoted, expectedType, question);
  const asked = new Set(qTerms);
  const novel = deps.analyze(quoted).some((t) => !asked.has(t));
  return { expectedType, typeMatch, novel };
}

/** Every sentence of the top chunks that shares a question term, best first. */
function scoreSentences(
  hits: SearchHit[],
  qTerms: string[],
  weights: ReadonlyMap<string, number>,
  totalWeight: number,
  deps: ExtractiveDeps,
): ScoredSentence[] {
  const scored: ScoredSentence[] = [];
  hits.forEach((hit, i) => {
    // A sentence under the heading "Defaults" of a document titled "Chunking" is about chunking defaults:
    // question terms found only in the title or section path count, at half weight.
    const context = new Set(deps.analyze(`${hit.document.title} ${hit.chunk.sectionPath.join(' ')}`));
    for (const s of splitSentences(hit.chunk.text)) {
      const terms = deps.analyze(s.text);
      if (terms.length === 0) continue;
      const present = new Set(terms);
      const matched = qTerms.filter((t) => present.has(t));
      if (matched.length === 0) continue;
      const fromContext = qTerms.filter((t) => !present.has(t) && context.has(t));
      const coverage =
        (matched.reduce((a, t) => a + weights.get(t)!, 0) +
          0.5 * fromContext.reduce((a, t) => a + weights.get(t)!, 0)) /
        totalWeight;
      // Coverage dominates; chunk rank and term density break ties between similar sentences.
      const density = matched.length / terms.length;
      const score = coverage + 0.1 / (i + 1) + 0.05 * density;
      scored.push({ ...s, hit, score, coverage, matched, contextMatched: fromContext });
    }
  });
  return scored.sort((a, b) => b.score - a.score);
}

/**
 * Greedy selection under the token budget, skipping duplicates from overlapping chunks; `support` is the
 * share of the question's weight the chosen sentences cover (terms seen only in titles at half weight).
 */
function selectSentences(
  scored: ScoredSentence[],
  weights: ReadonlyMap<string, number>,
  totalWeight: number,
  opts: ExtractiveOptions,
  deps: ExtractiveDeps,
): { chosen: ScoredSentence[]; support: number; tokens: number } {
  const best = scored[0]!;
  const chosen: ScoredSentence[] = [];
  const seen = new Set<string>();
  const covered = new Set<string>();
  const contextOnly = new Set<string>();
  let tokens = 0;
  const maxSentences = opts.maxSentences ?? 3;
  for (const s of scored) {
    if (chosen.length >= maxSentences) break;
    if (s.score < best.score * 0.6) break;
    const key = `${s.hit.chunk.docId}:${s.hit.chunk.start + s.start}`;
    const normalized = s.text.replace(/\s+/g, ' ').toLowerCase();
    if (seen.has(key) || seen.has(normalized)) continue;
    const cost = deps.countTokens(s.text);
    if (tokens + cost > opts.maxTokens && chosen.length > 0) continue;
    seen.add(key);
    seen.add(normalized);
    chosen.push(s);
    tokens += cost;
    for (const t of s.matched) covered.add(t);
    for (const t of s.contextMatched) if (!covered.has(t)) contextOnly.add(t);
  }
  for (const t of covered) contextOnly.delete(t);
  const support =
    ([...covered].reduce((a, t) => a + weights.get(t)!, 0) +
      0.5 * [...contextOnly].reduce((a, t) => a + weights.get(t)!, 0)) /
    totalWeight;
  return { chosen, support, tokens };
}

/** The chosen sentences as answer text with one marker per chunk, and a verbatim citation per sentence. */
function cite(chosen: ScoredSentence[]): { text: string; citations: Citation[] } {
  const markers = new Map<number, number>();
  const citations: Citation[] = [];
  const parts: string[] = [];
  for (const s of chosen) {
    const c = s.hit.chunk;
    let marker = markers.get(c.id);
    if (marker === undefined) {
      marker = markers.size + 1;
      markers.set(c.id, marker);
    }
    parts.push(`${s.text} [${marker}]`);
    citations.push({
      marker,
      docId: c.docId,
      source: s.hit.document.source,
      title: s.hit.document.title,
      sectionPath: c.sectionPath,
      chunkId: c.id,
      start: c.start + s.start,
      end: c.start + s.end,
      chunkStart: s.start,
      chunkEnd: s.end,
      quote: s.text,
    });
  }
  return { text: parts.join(' '), citations };
}

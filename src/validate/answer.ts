/**
 * Validation of a generated answer against the context it was written from, the last stage before an answer
 * leaves Quarry: every `[n]` must name a source that was in the context, every cited sentence must be
 * supported by what it cites, and each supported sentence gets a citation to an exact document span. The
 * answer gets a confidence; below a threshold Quarry abstains instead of passing on a guess.
 */
import { z } from 'zod';
import type { ContextSource } from '../assemble/types.js';
import { QuarryError } from '../errors.js';
import { NOT_ENOUGH_INFORMATION } from '../generate/extractive.js';
import type { Citation } from '../types.js';
import { type AnswerSentence, parseAnswerCitations } from './answer-citations.js';
import {
  analyzeClaim,
  extractFacts,
  type Mismatch,
  type PreparedSource,
  prepareSource,
  type SupportDeps,
  scoreSupport,
} from './support.js';

export const ValidationConfigSchema = z.object({
  /** `flag`: keep unsupported sentences and report them; `remove`: drop them from the returned text. */
  unsupportedPolicy: z.enum(['flag', 'remove']).default('flag'),
  /** A cited sentence is supported when its support (see support.ts) reaches this. */
  minSupport: z.number().min(0).max(1).default(0.5),
  /** Below this confidence the answer is replaced by `abstainText`. */
  minConfidence: z.number().min(0).max(1).default(0.4),
  /** Factual sentences without a citation count as unsupported (else they are only reported). */
  requireCitations: z.boolean().default(true),
  /** Consecutive source sentences one claim may draw on. */
  windowSentences: z.number().int().min(1).max(5).default(2),
  /** An uncited sentence with fewer content terms (and no number) is connective text, not a claim. */
  minClaimTerms: z.number().int().min(1).max(20).default(3),
  abstainText: z.string().min(1).default(NOT_ENOUGH_INFORMATION),
});
export type ValidationConfig = z.infer<typeof ValidationConfigSchema>;
export type ValidationConfigInput = z.input<typeof ValidationConfigSchema>;

export type SentenceStatus =
  /** Cited, and the cited sources support it. */
  | 'supported'
  /** Cited, but the cited sources do not support it (or it cites only unknown sources). */
  | 'unsupported'
  /** A factual sentence without citation. */
  | 'uncited'
  /** The model saying the sources do not answer (part of) the question. */
  | 'abstention'
  /** Headings, code, questions, connective text: nothing to check. */
  | 'not-checked';

export interface SentenceVerdict {
  sentence: AnswerSentence;
  status: SentenceStatus;
  /** 0–1 support by the cited sources that exist (0 when none exist or not checked). */
  support: number;
  coverage: number;
  /** Cited numbers that name sources of the context. */
  cited: number[];
  /** Cited numbers that do not. */
  unknownSources: number[];
  /** Claim terms found in no cited source. */
  missing: string[];
  mismatches: Mismatch[];
  removed: boolean;
}

export type AnswerProblemKind = 'unknown-source' | 'unsupported' | 'uncited';

export interface AnswerProblem {
  kind: AnswerProblemKind;
  /** Index of the sentence in `sentences`. */
  sentence: number;
  text: string;
  /** For `unknown-source`: the cited number. */
  source?: number;
  /** For `unsupported`: its support and what disagreed. */
  support?: number;
  mismatches?: Mismatch[];
}

export interface ConfidenceParts {
  /** Share of checked sentences that are supported. */
  supportedShare: number;
  /** Mean support of checked sentences (uncited ones count 0 when citations are required). */
  meanSupport: number;
  /** Share of citations (marker × source) that name a source of the context. */
  citationValidity: number;
}

export interface AnswerValidation {
  /** The answer to return: the model's text, without removed sentences, or the abstention text. */
  text: string;
  /** One verifiable citation per supported sentence and cited source that supports it. */
  citations: Citation[];
  abstained: boolean;
  abstainReason?: 'model' | 'low-confidence' | 'nothing-supported';
  /** 0–1, see `answerConfidence`. */
  confidence: number;
  confidenceParts: ConfidenceParts;
  sentences: SentenceVerdict[];
  problems: AnswerProblem[];
  /** Sentences dropped under the `remove` policy. */
  removedSentences: number;
  /** Markers dropped under the `remove` policy because every source they cite is unknown. */
  removedMarkers: number;
}

// "I don't have enough information", "the sources do not mention …", "I cannot answer …".
const ABSTENTION = [
  /(?:\bnot|n['’]t)\s+(?:have\s+)?(?:enough|sufficient)\s+information\b/i,
  /\b(?:I|we)\s+(?:do\s+not|don['’]t|cannot|can['’]t|could\s+not|couldn['’]t|am\s+unable\s+to)\s+(?:know|answer|find|determine|tell)\b/i,
  /\bunable\s+to\s+(?:answer|determine|find)\b/i,
  /\bno\s+information\s+(?:about|on|regarding|in)\b/i,
  /\b(?:sources?|context|documents?|passages?)\s+(?:provided\s+)?(?:do(?:es)?\s+not|do(?:es)?n['’]t|did\s+not|didn['’]t)\s+(?:contain|mention|say|provide|include|specify|cover|state|describe|address|answer)\b/i,
];

export function isAbstention(text: string): boolean {
  return ABSTENTION.some((re) => re.test(text));
}

/**
 * Confidence = (½ · supportedShare + ½ · meanSupport) · citationValidity, rounded to 3 decimals; 0 when no
 * sentence could be checked. The share rewards answers whose claims clear the bar, the mean how clearly
 * they clear it; invalid citations scale everything down, since a fabricated source number discredits the
 * rest of the answer too.
 */
export function answerConfidence(parts: ConfidenceParts, checked: number): number {
  if (checked === 0) return 0;
  const c = (0.5 * parts.supportedShare + 0.5 * parts.meanSupport) * parts.citationValidity;
  return Math.round(Math.min(1, Math.max(0, c)) * 1000) / 1000;
}

function parseConfig(options: ValidationConfigInput | undefined): ValidationConfig {
  const parsed = ValidationConfigSchema.safeParse(options ?? {});
  if (!parsed.success)
    throw new QuarryError('INVALID_CONFIG', `answer validation: ${z.prettifyError(parsed.error)}`, {
      issues: parsed.error.issues,
    });
  return parsed.data;
}

function isClaim(s: AnswerSentence, cfg: ValidationConfig, deps: SupportDeps): boolean {
  if (s.kind !== 'prose') return false;
  const claim = s.claim.trim();
  if (claim.endsWith('?') || claim.endsWith(':')) return false;
  return deps.analyze(claim).length >= cfg.minClaimTerms || extractFacts(claim).numbers.size > 0;
}

function citationFor(
  prepared: PreparedSource,
  quote: NonNullable<ReturnType<typeof scoreSupport>['matches'][number]['quote']>,
): Citation | undefined {
  const seg = quote.segment;
  if (seg === undefined) return undefined;
  const start = seg.docStart + (quote.start - seg.textStart);
  const end = start + (quote.end - quote.start);
  const src = prepared.source;
  return {
    marker: src.n,
    docId: src.docId,
    source: src.source,
    title: src.title,
    sectionPath: src.sectionPath,
    chunkId: seg.chunkId,
    start,
    end,
    chunkStart: start - seg.chunkStart,
    chunkEnd: end - seg.chunkStart,
    quote: quote.text,
  };
}

/**
 * Text with the given spans cut out. A sentence takes the blank after it with it, and a sentence that was
 * its whole line (a list item) takes the line break too.
 */
function cut(text: string, spans: Array<[number, number, 'sentence' | 'marker']>): string {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  let out = '';
  let at = 0;
  for (const [s0, e0, kind] of sorted) {
    let s = Math.max(s0, at);
    let e = e0;
    if (kind === 'marker') {
      if (s >= e) continue;
      out += text.slice(at, s);
      at = e;
      continue;
    }
    while (e < text.length && (text[e] === ' ' || text[e] === '\t')) e++;
    const lineStart = text.lastIndexOf('\n', s - 1) + 1;
    if (/^[ \t]*$/.test(text.slice(lineStart, s)) && (e === text.length || text[e] === '\n')) {
      s = Math.max(lineStart, at);
      if (e < text.length) e++;
    }
    if (s < at) continue;
    out += text.slice(at, s);
    at = e;
  }
  out += text.slice(at);
  return out
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/**
 * Checks an answer written from `sources` (numbered `[n]`). `deps` are the index's analysis chain and idf,
 * so support is measured in the same terms retrieval used.
 */
export function validateAnswer(
  answerText: string,
  sources: readonly ContextSource[],
  options: ValidationConfigInput | undefined,
  deps: SupportDeps,
): AnswerValidation {
  const cfg = parseConfig(options);
  const byNumber = new Map(sources.map((s) => [s.n, s]));
  const prepared = new Map<number, PreparedSource>();
  const prepare = (n: number): PreparedSource => {
    let p = prepared.get(n);
    if (p === undefined) {
      p = prepareSource(byNumber.get(n)!, deps);
      prepared.set(n, p);
    }
    return p;
  };
  const { sentences } = parseAnswerCitations(answerText);
  const judged = judgeSentences(sentences, { byNumber, prepare, cfg, deps });
  const { verdicts, problems, citations } = judged;
  const { parts, supported, checked } = confidenceParts(verdicts, judged, cfg);
  const confidence = answerConfidence(parts, checked);
  const base = {
    confidenceParts: parts,
    sentences: verdicts,
    problems,
    removedSentences: 0,
    removedMarkers: 0,
  };
  const abstain = (
    reason: AnswerValidation['abstainReason'],
    text: string,
    conf: number,
  ): AnswerValidation => ({
    ...base,
    text,
    citations: [],
    abstained: true,
    abstainReason: reason,
    confidence: conf,
  });

  // The model declining to answer is an answer in itself: keep its words (they may say what is missing).
  if (supported === 0 && verdicts.some((v) => v.status === 'abstention'))
    return abstain('model', answerText.trim(), 0);

  let text = answerText;
  if (cfg.unsupportedPolicy === 'remove') {
    text = removeUnsupported(answerText, verdicts, { byNumber, cfg, counts: base });
    if (supported === 0) return abstain('nothing-supported', cfg.abstainText, confidence);
  }
  if (confidence < cfg.minConfidence) return abstain('low-confidence', cfg.abstainText, confidence);
  return { ...base, text: text.trim(), citations, abstained: false, confidence };
}

interface JudgeContext {
  byNumber: ReadonlyMap<number, ContextSource>;
  prepare(n: number): PreparedSource;
  cfg: ValidationConfig;
  deps: SupportDeps;
}

interface Judged {
  verdicts: SentenceVerdict[];
  problems: AnswerProblem[];
  citations: Citation[];
  /** Source references made by the answer's markers, and how many name a source that exists. */
  references: number;
  validReferences: number;
}

/** A verdict for every sentence, the problems found (in sentence order) and the citations that hold. */
function judgeSentences(sentences: readonly AnswerSentence[], j: JudgeContext): Judged {
  const out: Judged = { verdicts: [], problems: [], citations: [], references: 0, validReferences: 0 };
  const citationKeys = new Set<string>();
  for (const s of sentences) {
    const cited = s.sources.filter((n) => j.byNumber.has(n));
    const unknownSources = s.sources.filter((n) => !j.byNumber.has(n));
    for (const m of s.markers) {
      out.references += m.sources.length;
      out.validReferences += m.sources.filter((n) => j.byNumber.has(n)).length;
    }
    for (const n of unknownSources)
      out.problems.push({ kind: 'unknown-source', sentence: s.index, text: s.text, source: n });
    const verdict: SentenceVerdict = {
      sentence: s,
      status: 'not-checked',
      support: 0,
      coverage: 0,
      cited,
      unknownSources,
      missing: [],
      mismatches: [],
      removed: false,
    };
    out.verdicts.push(verdict);
    if (s.kind === 'prose') judgeProse(verdict, j, out, citationKeys);
  }
  out.problems.sort((a, b) => a.sentence - b.sentence);
  return out;
}

/** One prose sentence: an abstention, an uncited claim, or a cited claim scored against its sources. */
function judgeProse(verdict: SentenceVerdict, j: JudgeContext, out: Judged, citationKeys: Set<string>): void {
  const s = verdict.sentence;
  const { cfg, deps } = j;
  if (s.sources.length === 0) {
    if (isAbstention(s.claim)) verdict.status = 'abstention';
    else if (isClaim(s, cfg, deps)) {
      verdict.status = 'uncited';
      out.problems.push({ kind: 'uncited', sentence: s.index, text: s.text });
    }
    return;
  }
  const claim = analyzeClaim(s.claim, deps);
  if (claim.weights.size === 0 && claim.numbers.size === 0) return;
  const result = scoreSupport(claim, verdict.cited.map(j.prepare), { windowSentences: cfg.windowSentences });
  verdict.support = result.support;
  verdict.coverage = result.coverage;
  verdict.missing = result.missing;
  verdict.mismatches = result.mismatches;
  if (verdict.cited.length > 0 && result.support >= cfg.minSupport) {
    verdict.status = 'supported';
    for (const m of result.matches) {
      if (m.quote === undefined || m.coverage === 0) continue;
      const c = citationFor(m.source, m.quote);
      const key = c && `${c.marker}:${c.start}:${c.end}`;
      if (c === undefined || citationKeys.has(key!)) continue;
      citationKeys.add(key!);
      out.citations.push(c);
    }
    return;
  }
  verdict.status = 'unsupported';
  out.problems.push({
    kind: 'unsupported',
    sentence: s.index,
    text: s.text,
    support: result.support,
    mismatches: result.mismatches,
  });
}

/** What the confidence is made of, over the sentences that were checked. */
function confidenceParts(
  verdicts: readonly SentenceVerdict[],
  refs: { references: number; validReferences: number },
  cfg: ValidationConfig,
): { parts: ConfidenceParts; supported: number; checked: number } {
  const checked = verdicts.filter(
    (v) =>
      v.status === 'supported' ||
      v.status === 'unsupported' ||
      (v.status === 'uncited' && cfg.requireCitations),
  );
  const supported = checked.filter((v) => v.status === 'supported').length;
  const parts: ConfidenceParts = {
    supportedShare: checked.length === 0 ? 0 : supported / checked.length,
    meanSupport:
      checked.length === 0 ? 0 : checked.reduce((a, v) => a + Math.min(1, v.support), 0) / checked.length,
    citationValidity: refs.references === 0 ? 1 : refs.validReferences / refs.references,
  };
  return { parts, supported, checked: checked.length };
}

/** `remove` policy: the answer without its unsupported (and, if required, uncited) sentences and dead markers. */
function removeUnsupported(
  answerText: string,
  verdicts: readonly SentenceVerdict[],
  r: {
    byNumber: ReadonlyMap<number, ContextSource>;
    cfg: ValidationConfig;
    counts: { removedSentences: number; removedMarkers: number };
  },
): string {
  const spans: Array<[number, number, 'sentence' | 'marker']> = [];
  for (const v of verdicts) {
    const drop = v.status === 'unsupported' || (v.status === 'uncited' && r.cfg.requireCitations);
    if (drop) {
      v.removed = true;
      r.counts.removedSentences++;
      spans.push([v.sentence.start, v.sentence.end, 'sentence']);
      continue;
    }
    for (const m of v.sentence.markers)
      if (m.sources.every((n) => !r.byNumber.has(n))) {
        r.counts.removedMarkers++;
        // Take the space before the marker with it: "tokens [7]." → "tokens."
        const s = m.start > 0 && answerText[m.start - 1] === ' ' ? m.start - 1 : m.start;
        spans.push([s, m.end, 'marker']);
      }
  }
  return cut(answerText, spans);
}

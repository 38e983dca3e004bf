/**
 * Question complexity for model routing: rule-based features of a question (its length in tokens, clauses,
 * named things, multi-hop wording, the intent and retrieval-strategy signals) and the rule that sends
 * simple questions to a small LLM and multi-hop, long or comparative ones to a large one. No model runs
 * here; every decision names the rule that made it.
 */
import { z } from 'zod';
import type { QueryComplexity } from '../types.js';
import { classifyIntent, extractEntities } from './understand.js';

export type { QueryComplexity } from '../types.js';

export const ComplexityRuleSchema = z.object({
  /** Questions longer than this many (o200k) tokens go to the large model. */
  maxSimpleTokens: z.number().int().min(1).max(10_000).default(24),
  /** More clauses than this go to the large model. */
  maxSimpleClauses: z.number().int().min(1).max(100).default(2),
  /** More named things (capitalized names, numbers, codes, quoted phrases) than this go to the large model. */
  maxSimpleEntities: z.number().int().min(0).max(100).default(3),
  /** Multi-hop wording ("compare", "both", "and then", "which … that") and comparison intent go large. */
  multiHop: z.boolean().default(true),
  /** A question the retrieval router sent to multi-stage retrieval (it looked complex there) goes large. */
  followStrategy: z.boolean().default(true),
});

export type ComplexityRule = z.infer<typeof ComplexityRuleSchema>;

export type ComplexityTier = 'small' | 'large';

// Each cue: a name for the trace and the wording that signals an answer needs several lookups or a chain.
const MULTI_HOP_CUES: Array<[string, RegExp]> = [
  ['compare', /\b(?:compare[sd]?|comparing|comparison)\b/i],
  ['difference between', /\bdifferences? between\b/i],
  ['versus', /\b(?:versus|vs\.?)(?=\s|$)/i],
  ['both', /\bboth\b/i],
  ['and then', /\b(?:and|,)\s+then\b/i],
  ['as well as', /\bas well as\b/i],
  ['relationship between', /\b(?:relationship|relation) between\b/i],
  ['before … after', /\b(?:before\b.+\bafter|after\b.+\bbefore)\b/i],
  [
    'which … that',
    /\b(?:which|who|what)\b.+\b(?:that|whose|who)\b.+\b(?:is|are|was|were|has|have|did|does)\b/i,
  ],
  ['and also', /\band also\b/i],
];

// Words that open a new clause; a separator counts only when text precedes it.
const CLAUSE_BREAK =
  /[,;:]|\b(?:and|or|but|because|while|whereas|although|though|which|that|who|whom|whose|where|when|if|then|unless|since)\b/gi;

/** Tokens, clauses, named things and multi-hop cues of `question`. */
export function queryComplexity(
  question: string,
  opts: { countTokens: (text: string) => number; strategy?: string | undefined },
): QueryComplexity {
  const q = question.trim().replace(/\s+/g, ' ');
  let clauses = 1;
  for (const m of q.matchAll(CLAUSE_BREAK)) {
    const before = q.slice(0, m.index).replace(/[\s,;:]+$/, '');
    const after = q.slice(m.index + m[0].length).trim();
    if (before !== '' && after.replace(/[?.!]+$/, '') !== '') clauses++;
  }
  const multiHopCues = MULTI_HOP_CUES.filter(([, re]) => re.test(q)).map(([name]) => name);
  const intent = classifyIntent(q, extractEntities(q));
  if (intent.intent === 'comparison' && !multiHopCues.includes('compare'))
    multiHopCues.push('comparison intent');
  return {
    tokens: opts.countTokens(q),
    clauses,
    entities: countEntities(q),
    multiHopCues,
    ...(opts.strategy === undefined ? {} : { strategy: opts.strategy }),
  };
}

/**
 * Names in the question: runs of capitalized words that do not start a sentence, numbers, quoted phrases
 * and code-like terms (error codes, ids, versions, paths) as query understanding extracts them.
 */
function countEntities(q: string): number {
  const codes = extractEntities(q);
  let rest = q;
  for (const e of codes) rest = rest.split(e.text).join(' ');
  rest = rest.replace(/"[^"]*"|'[^']*'/g, ' ');
  let n = codes.length;
  // A capitalized word right after the start or a sentence end is not a name by itself ("What", "The").
  const words = rest.split(/\s+/).filter(Boolean);
  let inName = false;
  words.forEach((w, i) => {
    const sentenceStart = i === 0 || /[.?!]$/.test(words[i - 1]!);
    const word = w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
    const isName = !sentenceStart && /^\p{Lu}/u.test(word) && word !== 'I';
    const isNumber = /^\d[\d.,]*$/.test(word);
    if ((isName && !inName) || isNumber) n++;
    inName = isName && !/[,;:.?!]$/.test(w);
  });
  return n;
}

/** Which model answers, and the rule that decided (checked in the order documented on the rule). */
export function classifyComplexity(
  f: QueryComplexity,
  rule: ComplexityRule,
): { tier: ComplexityTier; reason: string } {
  if (rule.multiHop && f.multiHopCues.length > 0)
    return { tier: 'large', reason: `multi-hop wording (${f.multiHopCues.join(', ')})` };
  if (rule.followStrategy && f.strategy === 'multi-stage')
    return { tier: 'large', reason: 'multi-stage retrieval strategy' };
  if (f.tokens > rule.maxSimpleTokens)
    return { tier: 'large', reason: `long question (${f.tokens} > ${rule.maxSimpleTokens} tokens)` };
  if (f.clauses > rule.maxSimpleClauses)
    return { tier: 'large', reason: `${f.clauses} clauses (> ${rule.maxSimpleClauses})` };
  if (f.entities > rule.maxSimpleEntities)
    return { tier: 'large', reason: `${f.entities} named things (> ${rule.maxSimpleEntities})` };
  return { tier: 'small', reason: 'simple question' };
}

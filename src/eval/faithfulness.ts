/**
 * Faithfulness for `quarry eval`: the share of an answer's sentences that the context it cites supports.
 * The default scorer is Quarry's own support scorer (src/validate/support.ts, the one answer validation
 * uses); with an LLM configured, an LLM judge reads the same sentences and passages under a versioned
 * prompt, and the report says how often the two agree. A judge call that fails is counted and reported,
 * and that answer is scored by the default scorer instead: a flaky judge never drops a question.
 */
import type { ContextSource } from '../assemble/types.js';
import type { LlmProvider, TokenUsage } from '../generate/llm/types.js';
import type { Answer, StoredChunk } from '../types.js';
import { parseAnswerCitations } from '../validate/answer-citations.js';
import { generateStructured, type JsonSchema } from '../validate/structured.js';
import { analyzeClaim, prepareSource, type SupportDeps, scoreSupport } from '../validate/support.js';

/** One answer sentence and the passages it is judged against. */
export interface FaithfulnessItem {
  sentence: string;
  /** Indices into the answer's passages. */
  passages: number[];
}

export interface FaithfulnessInput {
  /** The distinct cited chunks, numbered from 1 in the order first cited. */
  passages: Array<{ chunkId: number; docId: string; text: string }>;
  sentences: FaithfulnessItem[];
}

/**
 * The sentences of a non-abstained answer and the chunks they cite. A sentence's passages are the chunks of
 * the citations its markers name; an extractive quote, or a sentence whose markers name no kept citation, is
 * judged against every cited chunk. Sentences without content terms (connective text) are skipped.
 */
export function faithfulnessInput(
  answer: Pick<Answer, 'text' | 'citations' | 'abstained'>,
  chunkText: (ids: number[]) => Map<number, Pick<StoredChunk, 'text' | 'docId'>>,
  deps: SupportDeps,
): FaithfulnessInput {
  if (answer.abstained) return { passages: [], sentences: [] };
  const ids = [...new Set(answer.citations.map((c) => c.chunkId))];
  const chunks = chunkText(ids);
  const passages = ids.flatMap((id) => {
    const c = chunks.get(id);
    return c === undefined ? [] : [{ chunkId: id, docId: c.docId, text: c.text }];
  });
  const byMarker = new Map<number, number[]>();
  for (const c of answer.citations) {
    const i = passages.findIndex((p) => p.chunkId === c.chunkId);
    if (i < 0) continue;
    const list = byMarker.get(c.marker) ?? [];
    if (!list.includes(i)) list.push(i);
    byMarker.set(c.marker, list);
  }
  const all = passages.map((_, i) => i);
  const sentences: FaithfulnessItem[] = [];
  for (const s of parseAnswerCitations(answer.text).sentences) {
    if (s.kind !== 'prose' || deps.analyze(s.claim).length === 0) continue;
    const cited = [...new Set(s.sources.flatMap((n) => byMarker.get(n) ?? []))];
    sentences.push({ sentence: s.claim, passages: cited.length > 0 ? cited : all });
  }
  return { passages, sentences };
}

/** Per sentence: supported by its passages at `minSupport` (the validation threshold)? */
export function supportVerdicts(
  input: FaithfulnessInput,
  deps: SupportDeps,
  opts: { minSupport: number; windowSentences: number },
): boolean[] {
  const prepared = input.passages.map((p, i) => prepareSource(asSource(p, i + 1), deps));
  return input.sentences.map((s) => {
    const sources = s.passages.map((i) => prepared[i]!).filter(Boolean);
    if (sources.length === 0) return false;
    const r = scoreSupport(analyzeClaim(s.sentence, deps), sources, {
      windowSentences: opts.windowSentences,
    });
    return r.support >= opts.minSupport;
  });
}

function asSource(p: FaithfulnessInput['passages'][number], n: number): ContextSource {
  return {
    n,
    docId: p.docId,
    title: '',
    source: '',
    date: '',
    version: 0,
    sectionPath: [],
    kind: 'chunk',
    chunkIds: [p.chunkId],
    score: 0,
    text: p.text,
    tokens: 0,
    segments: [],
  };
}

/** The judge prompt. Change the text → change the version: reports name the version they were judged with. */
export const FAITHFULNESS_JUDGE_PROMPT = {
  version: 'faithfulness-judge/1',
  system:
    'You check whether each numbered sentence of an answer is supported by the numbered passages listed with it. A sentence is supported only when the passages state what it says; a different number, date, name, or the opposite claim is unsupported. Use only the passages, never outside knowledge. Reply in JSON: {"verdicts": [{"sentence": <number>, "supported": true | false}, …]} with one verdict per sentence.',
} as const;

const JUDGE_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    verdicts: {
      type: 'array',
      items: {
        type: 'object',
        properties: { sentence: { type: 'integer', minimum: 1 }, supported: { type: 'boolean' } },
        required: ['sentence', 'supported'],
      },
    },
  },
  required: ['verdicts'],
};

/** The judge's user message: the passages, then the sentences with the passages each is checked against. */
export function judgeMessage(question: string, input: FaithfulnessInput): string {
  const passages = input.passages.map((p, i) => `[P${i + 1}] ${p.text}`).join('\n\n');
  const sentences = input.sentences
    .map((s, i) => `${i + 1}. ${s.sentence} (passages: ${s.passages.map((p) => `P${p + 1}`).join(', ')})`)
    .join('\n');
  return `Question: ${question}\n\nPassages:\n${passages}\n\nAnswer sentences:\n${sentences}`;
}

/** The LLM judge's verdict per sentence; throws when the call fails or a sentence gets no verdict. */
export async function judgeVerdicts(
  provider: LlmProvider,
  question: string,
  input: FaithfulnessInput,
  signal?: AbortSignal,
): Promise<{ verdicts: boolean[]; usage: TokenUsage | undefined }> {
  const result = await generateStructured<{ verdicts: Array<{ sentence: number; supported: boolean }> }>(
    provider,
    [
      { role: 'system', content: FAITHFULNESS_JUDGE_PROMPT.system },
      { role: 'user', content: judgeMessage(question, input) },
    ],
    JUDGE_SCHEMA,
    signal === undefined ? {} : { signal },
  );
  const byIndex = new Map(result.value.verdicts.map((v) => [v.sentence, v.supported]));
  const verdicts = input.sentences.map((_, i) => byIndex.get(i + 1));
  const missing = verdicts.flatMap((v, i) => (v === undefined ? [i + 1] : []));
  if (missing.length > 0)
    throw new Error(`the judge gave no verdict for sentence(s) ${missing.join(', ')} of ${verdicts.length}`);
  return { verdicts: verdicts as boolean[], usage: result.usage };
}

/** Share of true values; undefined for none. */
export function shareSupported(verdicts: readonly boolean[]): number | undefined {
  return verdicts.length === 0 ? undefined : verdicts.filter(Boolean).length / verdicts.length;
}

/**
 * `quarry eval --generate <corpus> --out golden.jsonl`: drafts a golden set from the user's own corpus, so
 * evaluating starts from questions about their documents rather than a public benchmark. Chunks are sampled
 * evenly across the corpus; each yields one question with its answer span and source document. With an LLM
 * configured it writes the question (its answer must be copied from the chunk, or the rule-based draft is
 * kept); otherwise a rule-based cloze question blanks a fact (a date, number or name) out of the chunk's most
 * informative sentence. Every item is marked `draft` for a person to review.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { QuarryConfigInput } from '../config/config.js';
import { QuarryError } from '../errors.js';
import { splitSentences } from '../generate/extractive.js';
import { createLlmProvider } from '../generate/llm/create.js';
import type { LlmProvider } from '../generate/llm/types.js';
import { Quarry } from '../pipeline/quarry.js';
import type { StoredChunk } from '../types.js';
import { generateStructured, type JsonSchema } from '../validate/structured.js';
import { corpusDocKey, type GoldenItemInput } from './golden.js';

/** The drafting prompt. Change the text → change the version (drafts are tagged with it). */
export const GOLDEN_DRAFT_PROMPT = {
  version: 'golden-draft/1',
  system:
    'You write evaluation questions for a search system. Given a passage, write ONE question a user could ask that this passage answers on its own, without quoting it, and the shortest answer copied exactly from the passage (a name, number, date or short phrase). Reply in JSON: {"question": "…", "answer": "…"}.',
} as const;

const DRAFT_SCHEMA: JsonSchema = {
  type: 'object',
  properties: { question: { type: 'string', minLength: 5 }, answer: { type: 'string', minLength: 1 } },
  required: ['question', 'answer'],
};

export interface GenerateGoldenOptions {
  /** The corpus: a directory or a file (as `quarry ingest` takes). */
  corpus: string;
  /** Where to write the JSONL drafts. */
  out: string;
  /** Questions to draft (default 20); fewer when the corpus has fewer usable chunks. */
  count?: number;
  config?: QuarryConfigInput;
  /** Use the configured LLM (default: when an `llm` section is configured). */
  llm?: boolean;
}

export interface GenerateGoldenResult {
  file: string;
  items: GoldenItemInput[];
  /** `llm` when the LLM drafted (some) questions, else `rule-based`. */
  drafter: 'llm' | 'rule-based';
  /** LLM drafts rejected (call failed, or its answer is not in the chunk): rule-based drafts replaced them. */
  llmRejected: number;
  firstLlmError?: string;
}

export interface ClozeDraft {
  question: string;
  answer: string;
  sentence: string;
}

const DATE =
  /\b(?:(?:January|February|March|April|May|June|July|August|September|October|November|December)\s+\d{1,2},?\s+\d{4}|\d{1,2}\s+(?:January|February|March|April|May|June|July|August|September|October|November|December)\s+\d{4}|(?:January|February|March|April|May|June|July|August|September|October|November|December)\s+\d{4}|1\d{3}|20\d{2})\b/;
const NUMBER =
  /(?<![\w.])(?:\$|€|£)?\d[\d,.]*(?:\s?(?:%|percent|ms|s|kg|km|m|GB|MB|KB|tokens|million|billion|thousand|hundred))?(?![\w])/;
// A run of capitalised words not at the start of the sentence: a name.
const NAME = /(?<=\S\s+)(?:\p{Lu}[\p{L}\p{N}'’-]+)(?:\s+(?:of|de|the|von|van)?\s*\p{Lu}[\p{L}\p{N}'’-]+)*/u;

/**
 * The rule-based draft for one chunk: its most informative sentence (idf-weighted content terms, 6–60
 * words) that holds a fact, with the fact blanked out. Dates win over numbers over names (the least
 * ambiguous blank first). Undefined when no sentence holds one.
 */
export function clozeDraft(
  text: string,
  deps: { analyze(text: string): string[]; idf(term: string): number },
): ClozeDraft | undefined {
  const candidates: Array<{ score: number; draft: ClozeDraft }> = [];
  for (const s of splitSentences(text)) {
    const words = s.text.split(/\s+/).filter(Boolean);
    if (words.length < 6 || words.length > 60) continue;
    const match = DATE.exec(s.text) ?? NUMBER.exec(s.text) ?? NAME.exec(s.text);
    if (match === null) continue;
    const answer = match[0].trim();
    const terms = [...new Set(deps.analyze(s.text))];
    if (terms.length < 3) continue;
    const score = terms.reduce((a, t) => a + Math.max(deps.idf(t), 0), 0) / Math.sqrt(words.length);
    const blanked = `${s.text.slice(0, match.index)}_____${s.text.slice(match.index + match[0].length)}`;
    candidates.push({
      score,
      draft: {
        question: `Fill in the blank: ${blanked.replace(/\s+/g, ' ').trim()}`,
        answer,
        sentence: s.text,
      },
    });
  }
  // Best score; ties keep the earlier sentence (stable sort), so drafts are reproducible.
  candidates.sort((a, b) => b.score - a.score);
  return candidates[0]?.draft;
}

/** Chunk positions spread evenly over `total` chunks: `count` of them, first at 0. */
export function evenlySpaced(total: number, count: number): number[] {
  const n = Math.min(total, count);
  return Array.from({ length: n }, (_, k) => Math.floor((k * total) / n));
}

async function llmDraft(
  provider: LlmProvider,
  chunk: StoredChunk,
): Promise<{ question: string; answer: string }> {
  const result = await generateStructured<{ question: string; answer: string }>(
    provider,
    [
      { role: 'system', content: GOLDEN_DRAFT_PROMPT.system },
      { role: 'user', content: `Passage (from "${chunk.title}"):\n${chunk.text}` },
    ],
    DRAFT_SCHEMA,
  );
  const answer = result.value.answer.trim();
  if (!chunk.text.toLowerCase().includes(answer.toLowerCase()))
    throw new Error(`its answer "${answer.slice(0, 80)}" is not in the passage`);
  return { question: result.value.question.trim(), answer };
}

export async function generateGoldenSet(opts: GenerateGoldenOptions): Promise<GenerateGoldenResult> {
  const corpus = path.resolve(opts.corpus);
  if (!fs.existsSync(corpus)) throw new QuarryError('DATASET', `corpus ${corpus} does not exist`, { corpus });
  const count = opts.count ?? 20;
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-golden-'));
  const quarry = Quarry.open({ store, config: opts.config ?? {} });
  try {
    const ingest = await quarry.ingest([corpus]);
    if (ingest.added + ingest.updated + ingest.unchanged === 0)
      throw new QuarryError(
        'DATASET',
        `${corpus}: no document could be ingested${ingest.errors[0] ? ` (${ingest.errors[0].message})` : ''}`,
        { corpus },
      );
    const lexical = quarry.lexical;
    const deps = { analyze: (t: string) => lexical.analyzer.analyze(t), idf: (t: string) => lexical.idf(t) };
    const llm = quarry.config.llm;
    const provider =
      llm !== undefined && opts.llm !== false
        ? createLlmProvider({ ...llm, prices: { ...quarry.config.prices, ...llm.prices } })
        : undefined;
    const chunks = [...quarry.store.iterateChunks()];
    const sources = new Map<string, string>();
    const sourceOf = (docId: string): string => {
      let s = sources.get(docId);
      if (s === undefined) {
        s = quarry.store.getDocument(docId)?.meta.source ?? docId;
        sources.set(docId, s);
      }
      return s;
    };
    const items: GoldenItemInput[] = [];
    const used = new Set<number>();
    let llmRejected = 0;
    let llmDrafted = 0;
    let firstLlmError: string | undefined;
    // Each sampled position takes the first usable chunk from there on, so sparse corpora still fill up.
    for (const start of evenlySpaced(chunks.length, count)) {
      for (let i = start; i < chunks.length; i++) {
        if (used.has(i)) continue;
        const chunk = chunks[i]!;
        const cloze = clozeDraft(chunk.text, deps);
        let draft: { question: string; answer: string; via: 'llm' | 'rule-based' } | undefined;
        if (provider !== undefined) {
          try {
            draft = { ...(await llmDraft(provider, chunk)), via: 'llm' };
            llmDrafted++;
          } catch (e) {
            llmRejected++;
            firstLlmError ??= e instanceof Error ? e.message : String(e);
          }
        }
        if (draft === undefined && cloze !== undefined)
          draft = { question: cloze.question, answer: cloze.answer, via: 'rule-based' };
        if (draft === undefined) continue;
        used.add(i);
        items.push({
          id: `draft-${items.length + 1}`,
          question: draft.question,
          answers: [draft.answer],
          sources: [corpusDocKey({ docId: chunk.docId, source: sourceOf(chunk.docId) }, corpus)],
          answerable: true,
          tags: ['draft', draft.via === 'llm' ? GOLDEN_DRAFT_PROMPT.version : 'rule-based'],
          draft: true,
          ...(cloze !== undefined && draft.via === 'rule-based' ? { context: cloze.sentence } : {}),
        });
        break;
      }
    }
    if (items.length === 0)
      throw new QuarryError(
        'DATASET',
        `${corpus}: no chunk has a sentence a question could be drafted from (a date, number or name in a 6–60 word sentence)`,
        { corpus },
      );
    const out = path.resolve(opts.out);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${items.map((it) => JSON.stringify(it)).join('\n')}\n`);
    return {
      file: out,
      items,
      drafter: llmDrafted > 0 ? 'llm' : 'rule-based',
      llmRejected,
      ...(firstLlmError === undefined ? {} : { firstLlmError }),
    };
  } finally {
    quarry.close();
    fs.rmSync(store, { recursive: true, force: true });
  }
}

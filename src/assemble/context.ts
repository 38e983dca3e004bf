/**
 * Context assembly, between reranking and generation: turns ranked hits into the numbered sources of the
 * prompt, within the model's token budget (never over it), without duplicates, with parent sections when many
 * children of one section were retrieved, compressed to the sentences that matter, in the configured order.
 * Every source keeps a map from its text back to exact document offsets and chunk ids for citation checks.
 */
import { z } from 'zod';
import { QuarryError } from '../errors.js';
import type { ChatMessage } from '../generate/llm/types.js';
import {
  buildPrompt,
  DEFAULT_PROMPT_TEMPLATE,
  formatDay,
  type PromptTemplate,
  parsePromptTemplate,
  renderSource,
  SOURCE_SEPARATOR,
} from '../generate/prompt.js';
import type { ParentSection } from '../store/types.js';
import type { SearchHit } from '../types.js';
import {
  type CompressionDeps,
  DEFAULT_COMPRESSION,
  planCompression,
  queryWeights,
  runsOf,
  type SentenceSpan,
  splitSentences,
} from './compress.js';
import { countChatTokens } from './tokenizer.js';
import type { ContextBudget, ContextSource, ContextWindow, SourceSegment } from './types.js';

export const ContextConfigSchema = z.object({
  /** Model context window in tokens (input + output). */
  window: z.number().int().min(1).default(8192),
  /** Tokens kept free for the answer. */
  reservedOutput: z.number().int().min(0).default(1024),
  /** `edges` puts the strongest sources first and last, where long-context models attend best. */
  ordering: z.enum(['relevance', 'document', 'edges']).default('relevance'),
  /** `auto` compresses a source only when it would not fit whole; `always` compresses every source. */
  compression: z.enum(['off', 'auto', 'always']).default('auto'),
  compressionTuning: z
    .object({
      keepRatio: z.number().min(0).max(1).default(DEFAULT_COMPRESSION.keepRatio),
      strongRatio: z.number().min(0).max(1).default(DEFAULT_COMPRESSION.strongRatio),
      neighbourMaxTokens: z.number().int().min(0).default(DEFAULT_COMPRESSION.neighbourMaxTokens),
    })
    .default(DEFAULT_COMPRESSION),
  parentExpansion: z
    .object({
      enabled: z.boolean().default(true),
      /** Retrieved children of one heading section needed before the whole section is used instead. */
      minChildren: z.number().int().min(1).default(2),
    })
    .default({ enabled: true, minChildren: 2 }),
  /** Upper bound on the number of sources, whatever the budget (unset = budget only). */
  maxSources: z.number().int().min(1).optional(),
});
export type ContextConfig = z.infer<typeof ContextConfigSchema>;

export interface AssembleOptions extends z.input<typeof ContextConfigSchema> {
  /** The template the prompt will be built with: the budget is measured on it. Default: the built-in one. */
  template?: PromptTemplate;
  /** The day shown as `{{today}}` (kept in the result so the prompt renders exactly as measured). */
  today?: Date | string;
}

/** A chunk's place in its document, for mapping source text back to chunk ids. */
export interface ChunkSpan {
  id: number;
  start: number;
  end: number;
}

export interface AssembleDeps extends CompressionDeps {
  getParentSection(chunkId: number): ParentSection | undefined;
  /** Tokens of a whole chat request; default: content tokens plus OpenAI-style framing. */
  countMessages?(messages: readonly ChatMessage[]): number;
  /**
   * Every chunk of a section, so parent text maps to the chunk that really contains it. Without it, parent
   * text outside the retrieved children is attributed to the nearest retrieved child.
   */
  sectionChunks?(docId: string, sectionOrdinal: number): ChunkSpan[];
}

/** A candidate source before fitting: a contiguous document range and where its chunks lie. */
interface Unit {
  kind: 'chunk' | 'parent';
  docId: string;
  start: number;
  end: number;
  /** `documentText.slice(start, end)`. */
  text: string;
  /** Chunks covering the range, for segment attribution (doc offsets). */
  chunkMap: ChunkSpan[];
  /** Retrieved chunks this unit stands for. */
  chunkIds: number[];
  /** Position of its best hit in the ranking (lower = more relevant). */
  rank: number;
  score: number;
  hit: SearchHit;
  sectionPath: string[];
}

interface Placed {
  unit: Unit;
  runs: SentenceSpan[];
  source: ContextSource;
}

const ELLIPSIS = ' … ';
const WHITESPACE_RUN = /\s+/g;

export function assembleContext(
  question: string,
  hits: readonly SearchHit[],
  options: AssembleOptions = {},
  given: AssembleDeps,
): ContextWindow {
  const deps: AssembleDeps = { ...given, countTokens: memoizedCount(given.countTokens) };
  const { template: templateInput, today: todayInput, ...configInput } = options;
  const cfg = parseContextConfig(configInput);
  if (typeof question !== 'string') {
    throw new QuarryError('INVALID_ARGUMENT', 'the question must be a string', { question });
  }
  const template = parsePromptTemplate(templateInput ?? DEFAULT_PROMPT_TEMPLATE);
  const today = formatDay(todayInput ?? new Date());
  const countMessages =
    deps.countMessages ?? ((m: readonly ChatMessage[]) => countChatTokens(m, (t) => deps.countTokens(t)));
  const budget = measureBudget(cfg, countMessages(buildPrompt(template, question, { sources: [], today })));

  const dropped: ContextWindow['dropped'] = [];
  const { units, parents } = buildUnits(dedupe(hits, dropped), cfg, deps);
  const weights = cfg.compression === 'off' ? new Map<string, number>() : queryWeights(question, deps);
  const fitter = new Fitter(template, today, deps, cfg, weights);
  const { placed, compressedSentences } = placeUnits(units, parents, { cfg, budget, fitter, dropped });

  // Final order and numbering, then a check on the real rendered prompt: BPE counts are not additive and a
  // source's number can change with the order, so the sum of per-source counts is verified, never trusted.
  const limit = budget.available + budget.promptOverhead;
  let ordered = order(placed, cfg.ordering);
  for (;;) {
    ordered = ordered.map((p, i) => ({ ...p, source: fitter.renumber(p, i + 1) }));
    const tokens = ordered.reduce((sum, p) => sum + p.source.tokens, 0);
    const sources = ordered.map((p) => p.source);
    const total = countMessages(buildPrompt(template, question, { sources, today }));
    if ((tokens <= budget.available && total <= limit) || ordered.length === 0) {
      return { sources, tokens, budget, ordering: cfg.ordering, dropped, compressedSentences, today };
    }
    const weakest = ordered.reduce((w, p) => (p.unit.rank > w.unit.rank ? p : w));
    for (const id of weakest.unit.chunkIds) dropped.push({ chunkId: id, reason: 'budget' });
    ordered = ordered.filter((p) => p !== weakest);
  }
}

/**
 * Token counting is most of assembly's cost (BPE over every source), and fitting asks for the same rendered
 * source more than once (measured, then built for the window): within one assembly a text is counted once.
 */
function memoizedCount(count: (text: string) => number): (text: string) => number {
  const seen = new Map<string, number>();
  return (text) => {
    let n = seen.get(text);
    if (n === undefined) {
      n = count(text);
      seen.set(text, n);
    }
    return n;
  };
}

function parseContextConfig(input: unknown): ContextConfig {
  const parsed = ContextConfigSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new QuarryError('INVALID_CONFIG', `context: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`, {
    config: input,
  });
}

/** The window less the answer's reserve and the prompt without sources; an error when nothing is left. */
function measureBudget(cfg: ContextConfig, overhead: number): ContextBudget {
  const limit = cfg.window - cfg.reservedOutput;
  if (limit <= 0 || overhead > limit) {
    throw new QuarryError(
      'CONTEXT_BUDGET',
      `the prompt without any source needs ${overhead} tokens, but window − reservedOutput is ${limit} ` +
        `(window ${cfg.window}, reservedOutput ${cfg.reservedOutput}); shorten the question or the template, ` +
        'or raise the window',
      { window: cfg.window, reservedOutput: cfg.reservedOutput, promptOverhead: overhead },
    );
  }
  return {
    window: cfg.window,
    reservedOutput: cfg.reservedOutput,
    promptOverhead: overhead,
    available: limit - overhead,
  };
}

/**
 * Units in rank order, each placed if it fits what is left of the budget; a parent section is tried first in
 * place of its children. What does not fit is listed in `dropped` with the reason.
 */
function placeUnits(
  units: readonly Unit[],
  parents: ReadonlyMap<Unit, { unit: Unit; children: Unit[] }>,
  p: { cfg: ContextConfig; budget: ContextBudget; fitter: Fitter; dropped: ContextWindow['dropped'] },
): { placed: Placed[]; compressedSentences: number } {
  const { cfg, budget, fitter, dropped } = p;
  const placed: Placed[] = [];
  const consumed = new Set<Unit>();
  let used = 0;
  let compressedSentences = 0;
  const consider = (unit: Unit): boolean => {
    if (cfg.maxSources !== undefined && placed.length >= cfg.maxSources) return false;
    const fit = fitter.fit(unit, placed.length + 1, budget.available - used);
    if (!fit) return false;
    placed.push({ unit, runs: fit.runs, source: fit.source });
    used += fit.source.tokens;
    compressedSentences += fit.compressed;
    return true;
  };
  for (const unit of units) {
    if (consumed.has(unit)) continue;
    const parent = parents.get(unit);
    if (parent && !consumed.has(parent.unit) && consider(parent.unit)) {
      consumed.add(parent.unit);
      for (const child of parent.children) {
        consumed.add(child);
        for (const id of child.chunkIds) dropped.push({ chunkId: id, reason: 'merged-into-parent' });
      }
      continue;
    }
    consumed.add(unit);
    if (!consider(unit)) {
      const reason =
        cfg.maxSources !== undefined && placed.length >= cfg.maxSources ? 'max-sources' : 'budget';
      for (const id of unit.chunkIds) dropped.push({ chunkId: id, reason });
    }
  }
  return { placed, compressedSentences };
}

/** Drops repeated chunks and chunks whose text (ignoring whitespace differences) was already seen. */
function dedupe(
  hits: readonly SearchHit[],
  dropped: ContextWindow['dropped'],
): Array<{ hit: SearchHit; rank: number }> {
  const ids = new Set<number>();
  const texts = new Set<string>();
  const out: Array<{ hit: SearchHit; rank: number }> = [];
  hits.forEach((hit, rank) => {
    const c = hit?.chunk;
    if (!c || typeof c.text !== 'string' || !(c.end - c.start === c.text.length) || c.start < 0) {
      throw new QuarryError(
        'INVALID_ARGUMENT',
        'a hit chunk must be an exact slice: text.length === end − start',
        {
          chunkId: c?.id,
          start: c?.start,
          end: c?.end,
        },
      );
    }
    const key = c.text.replace(WHITESPACE_RUN, ' ').trim();
    if (ids.has(c.id) || texts.has(key) || key === '') {
      dropped.push({ chunkId: c.id, reason: key === '' ? 'empty' : 'duplicate' });
      return;
    }
    ids.add(c.id);
    texts.add(key);
    out.push({ hit, rank });
  });
  return out;
}

type RankedHit = { hit: SearchHit; rank: number };

/**
 * Chunk units (overlapping or touching chunks of one document merged into one contiguous range), in order of
 * their best hit, and for sections with enough retrieved children the parent unit that can replace them.
 */
function buildUnits(
  hits: RankedHit[],
  cfg: ContextConfig,
  deps: AssembleDeps,
): { units: Unit[]; parents: Map<Unit, { unit: Unit; children: Unit[] }> } {
  const units = [...groupBy(hits, (h) => h.hit.document.id).values()].flatMap(mergeChunks);
  units.sort((a, b) => a.rank - b.rank);
  const parents = new Map<Unit, { unit: Unit; children: Unit[] }>();
  if (!cfg.parentExpansion.enabled) return { units, parents };
  const sections = groupBy(hits, (h) => `${h.hit.document.id}\u0000${h.hit.chunk.sectionOrdinal}`);
  for (const children of sections.values()) {
    if (children.length < cfg.parentExpansion.minChildren) continue;
    const parent = parentUnit(children, units, deps);
    if (parent !== undefined) parents.set(parent.lead, { unit: parent.unit, children: parent.inside });
  }
  return { units, parents };
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list === undefined) groups.set(k, [item]);
    else list.push(item);
  }
  return groups;
}

/** One document's hits as units: chunks that overlap or touch (and agree on the shared text) merge. */
function mergeChunks(list: RankedHit[]): Unit[] {
  list.sort((a, b) => a.hit.chunk.start - b.hit.chunk.start || b.hit.chunk.end - a.hit.chunk.end);
  const units: Unit[] = [];
  let cur: Unit | undefined;
  for (const h of list) {
    const c = h.hit.chunk;
    if (cur && c.start <= cur.end && consistent(cur, c)) {
      if (c.end > cur.end) {
        cur.text += c.text.slice(cur.end - c.start);
        cur.end = c.end;
      }
      cur.chunkMap.push({ id: c.id, start: c.start, end: c.end });
      cur.chunkIds.push(c.id);
      if (h.rank < cur.rank) {
        cur.rank = h.rank;
        cur.hit = h.hit;
        cur.sectionPath = c.sectionPath;
      }
      cur.score = Math.max(cur.score, h.hit.score);
      continue;
    }
    cur = {
      kind: 'chunk',
      docId: h.hit.document.id,
      start: c.start,
      end: c.end,
      text: c.text,
      chunkMap: [{ id: c.id, start: c.start, end: c.end }],
      chunkIds: [c.id],
      rank: h.rank,
      score: h.hit.score,
      hit: h.hit,
      sectionPath: c.sectionPath,
    };
    units.push(cur);
  }
  return units;
}

/** The parent section of a group of retrieved children, as a unit that can replace the units inside it. */
function parentUnit(
  children: RankedHit[],
  units: readonly Unit[],
  deps: AssembleDeps,
): { unit: Unit; lead: Unit; inside: Unit[] } | undefined {
  const best = children.reduce((a, b) => (b.rank < a.rank ? b : a));
  const section = deps.getParentSection(best.hit.chunk.id);
  if (
    !section ||
    section.docId !== best.hit.document.id ||
    section.text.length !== section.end - section.start
  )
    return undefined;
  // Only units lying wholly inside the section can be replaced by it.
  const inside = units.filter(
    (u) => u.docId === section.docId && u.start >= section.start && u.end <= section.end,
  );
  if (inside.length === 0) return undefined;
  const childSpans = inside.flatMap((u) => u.chunkMap);
  const all = deps.sectionChunks?.(section.docId, section.ordinal);
  const chunkMap = (all && all.length > 0 ? all : childSpans)
    .filter((c) => c.end > section.start && c.start < section.end)
    .sort((a, b) => a.start - b.start);
  const lead = inside.reduce((a, b) => (b.rank < a.rank ? b : a));
  const unit: Unit = {
    kind: 'parent',
    docId: section.docId,
    start: section.start,
    end: section.end,
    text: section.text,
    chunkMap,
    chunkIds: inside.flatMap((u) => u.chunkIds),
    rank: lead.rank,
    score: Math.max(...inside.map((u) => u.score)),
    hit: lead.hit,
    sectionPath: section.path,
  };
  return { unit, lead, inside };
}

/** Overlapping chunks must agree on the shared text, else they are not slices of one document version. */
function consistent(cur: Unit, c: { start: number; end: number; text: string }): boolean {
  const sharedEnd = Math.min(cur.end, c.end);
  return cur.text.slice(c.start - cur.start, sharedEnd - cur.start) === c.text.slice(0, sharedEnd - c.start);
}

/** Decides how much of a unit goes into the window: whole, compressed, trimmed at a sentence, or not at all. */
class Fitter {
  constructor(
    private readonly template: PromptTemplate,
    private readonly today: string,
    private readonly deps: AssembleDeps,
    private readonly cfg: ContextConfig,
    private readonly weights: Map<string, number>,
  ) {}

  fit(
    unit: Unit,
    n: number,
    remaining: number,
  ): { runs: SentenceSpan[]; source: ContextSource; compressed: number } | undefined {
    const cost = (runs: SentenceSpan[]): number => this.make(unit, runs, n).tokens;
    // Not even the header fits: no text can.
    if (remaining <= 0 || cost([]) >= remaining) return undefined;
    const whole = [{ start: 0, end: unit.text.length }];
    const compression = this.cfg.compression;
    if (compression !== 'always' && cost(whole) <= remaining) return this.done(unit, whole, n, 0);

    // A parent replaces its children only when it fits as it is (compressed, under 'always'); cutting it
    // further would lose the children's own text, so the children are tried instead.
    const partial = unit.kind === 'chunk';
    let sentences: SentenceSpan[] | undefined;
    if (compression === 'always' || (compression === 'auto' && partial)) {
      const plan = planCompression(unit.text, this.weights, this.deps, this.cfg.compressionTuning);
      if (plan) {
        sentences = plan.sentences;
        const runsFor = (k: number): SentenceSpan[] => runsOf(plan.sentences, plan.priority.slice(0, k));
        const all = plan.priority.length;
        const k = partial
          ? largestFitting(all, (k) => cost(runsFor(k)) <= remaining)
          : cost(runsFor(all)) <= remaining
            ? all
            : 0;
        if (k > 0) return this.done(unit, runsFor(k), n, plan.sentences.length - k);
      } else if (compression === 'always' && cost(whole) <= remaining) {
        return this.done(unit, whole, n, 0);
      }
    }
    if (!partial) return undefined;
    // Trim at a sentence boundary: the longest run of leading sentences that fits.
    const all = sentences ?? splitSentences(unit.text);
    const prefix = (k: number): SentenceSpan[] =>
      runsOf(
        all,
        Array.from({ length: k }, (_, i) => i),
      );
    const k = largestFitting(all.length, (k) => cost(prefix(k)) <= remaining);
    return k > 0 ? this.done(unit, prefix(k), n, 0) : undefined;
  }

  renumber(p: Placed, n: number): ContextSource {
    return p.source.n === n ? p.source : this.make(p.unit, p.runs, n);
  }

  private done(unit: Unit, runs: SentenceSpan[], n: number, compressed: number) {
    return { runs, source: this.make(unit, runs, n), compressed };
  }

  make(unit: Unit, runs: SentenceSpan[], n: number): ContextSource {
    const meta = unit.hit.document;
    const pieces: string[] = [];
    const segments: SourceSegment[] = [];
    let offset = 0;
    for (const run of runs) {
      if (pieces.length > 0) offset += ELLIPSIS.length;
      pieces.push(unit.text.slice(run.start, run.end));
      segments.push(...attribute(unit, unit.start + run.start, unit.start + run.end, offset));
      offset += run.end - run.start;
    }
    const source: ContextSource = {
      n,
      docId: unit.docId,
      title: meta.title,
      source: meta.source,
      date: meta.updated_at,
      version: meta.version,
      sectionPath: unit.sectionPath,
      kind: unit.kind,
      chunkIds: [...unit.chunkIds],
      score: unit.score,
      text: pieces.join(ELLIPSIS),
      tokens: 0,
      segments,
    };
    source.tokens = this.deps.countTokens(renderSource(this.template, source, this.today) + SOURCE_SEPARATOR);
    return source;
  }
}

/** Largest k in [0, max] with ok(k), assuming ok is (nearly) monotone; the answer is always re-checked. */
function largestFitting(max: number, ok: (k: number) => boolean): number {
  let lo = 0;
  let hi = max;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  while (lo > 0 && !ok(lo)) lo--;
  return lo;
}

/**
 * Splits the document range [from, to) into segments, each attributed to a chunk containing it (the one
 * reaching furthest, to keep segments few). Text between chunks (whitespace, or parent text outside the
 * retrieved children when the section's chunks are unknown) is its own segment, attributed to the next chunk,
 * else the previous one.
 */
function attribute(unit: Unit, from: number, to: number, textStart: number): SourceSegment[] {
  const out: SourceSegment[] = [];
  const map = unit.chunkMap;
  let pos = from;
  while (pos < to) {
    let owner: ChunkSpan | undefined;
    for (const c of map) if (c.start <= pos && pos < c.end && (!owner || c.end > owner.end)) owner = c;
    let end: number;
    if (owner) end = Math.min(to, owner.end);
    else {
      const next = map.find((c) => c.start > pos);
      owner = next ?? map[map.length - 1]!;
      end = next ? Math.min(to, next.start) : to;
    }
    out.push({
      textStart: textStart + (pos - from),
      docStart: pos,
      length: end - pos,
      chunkId: owner.id,
      chunkStart: owner.start,
    });
    pos = end;
  }
  return out;
}

/** Sources in presentation order. */
function order(placed: Placed[], ordering: ContextConfig['ordering']): Placed[] {
  const byRank = [...placed].sort((a, b) => a.unit.rank - b.unit.rank);
  if (ordering === 'relevance') return byRank;
  if (ordering === 'edges') {
    // Strongest at both ends, weakest in the middle ("lost in the middle").
    const front: Placed[] = [];
    const back: Placed[] = [];
    for (const [i, p] of byRank.entries()) {
      if (i % 2 === 0) front.push(p);
      else back.unshift(p);
    }
    return [...front, ...back];
  }
  const docRank = new Map<string, number>();
  for (const p of byRank) if (!docRank.has(p.unit.docId)) docRank.set(p.unit.docId, p.unit.rank);
  return [...placed].sort(
    (a, b) => docRank.get(a.unit.docId)! - docRank.get(b.unit.docId)! || a.unit.start - b.unit.start,
  );
}

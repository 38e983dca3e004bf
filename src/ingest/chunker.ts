/**
 * Structure-aware chunking: turns a ParsedDocument into heading-delimited sections (the "parents" used for
 * context) and small retrieval chunks inside them. Every chunk is an exact, trimmed slice of the document
 * text and never exceeds the token budget, whatever the input looks like.
 */
import { QuarryError } from '../errors.js';
import type { Block, ChunkDraft, ParsedDocument, Section } from '../types.js';
import { paragraphBlocks } from './parsers/text.js';
import {
  embedSentences as hashedNgramSentences,
  resolveSemanticChunking,
  type SemanticChunkingConfig,
  type SemanticChunkingInput,
  type SentenceEmbedder,
  topicSegmentStarts,
} from './semantic.js';
import type { TokenCounter } from './tokens.js';

export interface ChunkOptions {
  /** Hard cap per chunk (≥ 4, so a single code point always fits). */
  maxTokens: number;
  /** Trailing whole sentences of a chunk repeated at the start of the next one; capped at maxTokens / 2. */
  overlapTokens: number;
  /** Cap per section; larger sections are split at block/paragraph boundaries. Raised to maxTokens if lower. */
  parentMaxTokens: number;
  countTokens: TokenCounter;
  /** Cuts at topic shifts inside sections over the budget (see semantic.ts); absent or disabled = structure only. */
  semantic?: SemanticChunkingInput;
  /** Sentence vectors for semantic chunking; hashed character n-grams by default. */
  embedSentences?: SentenceEmbedder;
}

export interface ChunkedDocument {
  sections: Section[];
  chunks: ChunkDraft[];
}

interface Range {
  start: number;
  end: number;
}

interface Unit extends Range {
  heading: boolean;
}

interface Piece extends Range {
  tokens: number;
}

interface Topics {
  config: SemanticChunkingConfig;
  embed: SentenceEmbedder;
}

/** An overlap start inside the previous chunk, with the (estimated) tokens it would repeat. */
interface OverlapCandidate {
  start: number;
  tokens: number;
}

const SPACE = /\s/;
// Made on first use (it loads ICU break data): commands that never chunk should not pay for it at start.
let sentenceSegmenter: Intl.Segmenter | undefined;

/**
 * Split a parsed document into heading-delimited sections and retrieval chunks, each chunk an exact slice
 * `doc.text.slice(start, end)` within `maxTokens`. The chunker ingest uses (with `config.chunking`).
 *
 * @example
 * const text = '# Keys\n\nRotate keys every 90 days.';
 * const { sections, chunks } = chunkDocument(
 *   { text, blocks: [{ kind: 'heading', level: 1, heading: 'Keys', start: 0, end: 6 }, { kind: 'paragraph', start: 8, end: text.length }] },
 *   { maxTokens: 256, overlapTokens: 32, parentMaxTokens: 1024, countTokens },
 * );
 */
export function chunkDocument(doc: ParsedDocument, opts: ChunkOptions): ChunkedDocument {
  const maxTokens = Math.floor(opts.maxTokens);
  if (!(maxTokens >= 4)) {
    throw new QuarryError('INVALID_ARGUMENT', `maxTokens must be at least 4, got ${opts.maxTokens}`, {
      maxTokens: opts.maxTokens,
    });
  }
  if (!(opts.overlapTokens >= 0) || !(opts.parentMaxTokens > 0)) {
    throw new QuarryError('INVALID_ARGUMENT', 'overlapTokens must be ≥ 0 and parentMaxTokens > 0', {
      overlapTokens: opts.overlapTokens,
      parentMaxTokens: opts.parentMaxTokens,
    });
  }
  // Clamped rather than rejected: a chunk that is mostly repetition multiplies the index for nothing, and a
  // parent smaller than a chunk cannot hold one.
  const overlap = Math.min(Math.floor(opts.overlapTokens), Math.floor(maxTokens / 2));
  const parentMax = Math.max(Math.floor(opts.parentMaxTokens), maxTokens);
  const semantic = opts.semantic === undefined ? undefined : resolveSemanticChunking(opts.semantic);
  const topics = semantic?.enabled
    ? { config: semantic, embed: opts.embedSentences ?? hashedNgramSentences }
    : undefined;
  const c = new Chunker(doc.text, opts.countTokens, topics);
  const blocks = normalizeBlocks(doc.blocks, doc.text.length);

  const sections: Section[] = [];
  const chunks: ChunkDraft[] = [];
  for (const raw of rawSections(doc.text, blocks)) {
    for (const range of c.splitSection(raw, blocks, parentMax)) {
      const ordinal = sections.length;
      sections.push({ ordinal, path: [...raw.path], start: range.start, end: range.end });
      for (const piece of c.chunkSection(range, blocks, maxTokens, overlap)) {
        chunks.push({
          ordinal: chunks.length,
          section: ordinal,
          start: piece.start,
          end: piece.end,
          text: doc.text.slice(piece.start, piece.end),
          tokenCount: piece.tokens,
        });
      }
    }
  }
  return { sections, chunks };
}

/** Sorted, clipped to the text, non-empty and non-overlapping: parsers are trusted, but not blindly. */
function normalizeBlocks(blocks: Block[], length: number): Block[] {
  const sorted = blocks
    .map((b) => ({
      ...b,
      start: Math.max(0, Math.min(b.start, length)),
      end: Math.max(0, Math.min(b.end, length)),
    }))
    .filter((b) => b.end > b.start)
    .sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Block[] = [];
  let cursor = 0;
  for (const b of sorted) {
    if (b.end <= cursor) continue; // nested in the previous block
    out.push(b.start < cursor ? { ...b, start: cursor } : b);
    cursor = b.end;
  }
  return out;
}

/**
 * One range per heading (heading to next heading of any level), plus the text before the first heading.
 * Text before the first block is not content (front matter) and belongs to no section.
 */
function rawSections(text: string, blocks: Block[]): Array<Range & { path: string[] }> {
  const starts: Array<{ start: number; path: string[] }> = [];
  const firstStart = blocks[0]?.start ?? 0;
  if (blocks[0]?.kind !== 'heading') starts.push({ start: firstStart, path: [] });
  const stack: Array<{ level: number; text: string }> = [];
  for (const b of blocks) {
    if (b.kind !== 'heading') continue;
    const level = Number.isFinite(b.level) ? Math.min(6, Math.max(1, b.level!)) : 1;
    while (stack.length > 0 && stack[stack.length - 1]!.level >= level) stack.pop();
    stack.push({ level, text: b.heading ?? headingFromMarkup(text.slice(b.start, b.end)) });
    starts.push({ start: b.start, path: stack.map((h) => h.text) });
  }
  const out: Array<Range & { path: string[] }> = [];
  for (let i = 0; i < starts.length; i++) {
    const s = starts[i]!;
    const r = trim(text, s.start, starts[i + 1]?.start ?? text.length);
    if (r) out.push({ ...r, path: s.path });
  }
  return out;
}

function headingFromMarkup(s: string): string {
  return s
    .replace(/^\s*#{1,6}\s*/, '')
    .replace(/\s#+\s*$/, '')
    .replace(/\n[=-]+\s*$/, '')
    .replace(/\s+/g, ' ')
    .trim();
}

function trim(text: string, start: number, end: number): Range | undefined {
  let s = start;
  let e = end;
  while (s < e && SPACE.test(text[s]!)) s++;
  while (e > s && SPACE.test(text[e - 1]!)) e--;
  return e > s ? { start: s, end: e } : undefined;
}

class Chunker {
  private readonly memo = new Map<number | string, number>();

  constructor(
    private readonly text: string,
    private readonly counter: TokenCounter,
    private readonly topics?: Topics,
  ) {}

  /**
   * Token count of a slice, memoised: the same range is often a section, a unit and a piece at once. Keyed by
   * one number (a string key per range cost ~100 bytes each, over a million of them for a 50 MB file).
   */
  count(start: number, end: number): number {
    const key = this.text.length < 94_000_000 ? start * (this.text.length + 1) + end : `${start}:${end}`;
    let n = this.memo.get(key);
    if (n === undefined) {
      n = this.counter(this.text.slice(start, end));
      this.memo.set(key, n);
    }
    return n;
  }

  /**
   * Whether a slice has more than `limit` tokens. The BPE pre-tokenizer never lets a token span
   * "word, space, word", so each whitespace-separated word costs at least one token: when the words alone
   * exceed the limit, the (expensive, exact) count is skipped.
   */
  exceeds(start: number, end: number, limit: number): boolean {
    let words = 0;
    let inWord = false;
    for (let i = start; i < end; i++) {
      const c = this.text.charCodeAt(i);
      const space =
        c === 32 || c === 10 || c === 9 || c === 13 || c === 12 || c === 11 || c === 0xa0 || c === 0x3000;
      if (space) inWord = false;
      else if (!inWord) {
        inWord = true;
        if (++words > limit) return true;
      }
    }
    return this.count(start, end) > limit;
  }

  /** Keeps a parent bounded: an oversized section becomes consecutive sections cut at the coarsest boundary. */
  splitSection(range: Range, blocks: Block[], parentMax: number): Range[] {
    if (!this.exceeds(range.start, range.end, parentMax)) return [range];
    const pieces = this.pieces(this.units(range, blocks), parentMax);
    return this.pack(pieces, parentMax, 0);
  }

  chunkSection(range: Range, blocks: Block[], maxTokens: number, overlap: number): Piece[] {
    if (!this.exceeds(range.start, range.end, maxTokens))
      return [{ ...range, tokens: this.count(range.start, range.end) }];
    const segments = this.topics ? this.topicSegments(range, blocks, this.topics) : [range];
    // Each topic segment is packed on its own, so overlap never carries one topic's sentences into the next.
    return segments.flatMap((s) =>
      s !== range && !this.exceeds(s.start, s.end, maxTokens)
        ? [{ ...s, tokens: this.count(s.start, s.end) }]
        : this.pack(this.pieces(this.units(s, blocks), maxTokens), maxTokens, overlap),
    );
  }

  /**
   * The section cut at topic shifts, as consecutive trimmed ranges covering it. A heading is fused with the
   * sentence after it: a boundary right under a heading would leave the heading alone.
   */
  private topicSegments(range: Range, blocks: Block[], topics: Topics): Range[] {
    const sentences: Range[] = [];
    // breaks[g]: the gap after sentence g ends a block or a paragraph (blank line).
    const breaks: boolean[] = [];
    let heading: number | undefined;
    for (const unit of this.units(range, blocks)) {
      if (unit.heading) {
        heading ??= unit.start;
        continue;
      }
      if (sentences.length > 0) breaks[sentences.length - 1] = true;
      for (const s of this.sentences(unit)) {
        const prev = sentences[sentences.length - 1];
        if (prev && breaks[sentences.length - 1] === undefined)
          breaks[sentences.length - 1] = /\n\s*\n/.test(this.text.slice(prev.end, s.start));
        sentences.push(heading === undefined ? s : { start: heading, end: s.end });
        heading = undefined;
      }
    }
    if (heading !== undefined) sentences.push({ start: heading, end: range.end });
    const starts = topicSegmentStarts(
      sentences.map((s) => this.text.slice(s.start, s.end)),
      sentences.map((s) => this.count(s.start, s.end)),
      topics.config,
      topics.embed,
      breaks,
    );
    if (starts.length === 0) return [range];
    const bounds = [0, ...starts, sentences.length];
    return bounds
      .slice(0, -1)
      .map((b, j) => ({ start: sentences[b]!.start, end: sentences[bounds[j + 1]! - 1]!.end }));
  }

  /** The blocks inside `range`, plus any non-blank text between them (so nothing a parser skipped is lost). */
  private units(range: Range, blocks: Block[]): Unit[] {
    const units: Unit[] = [];
    const push = (s: number, e: number, heading = false): void => {
      const r = trim(this.text, s, e);
      if (r) units.push({ ...r, heading });
    };
    let cursor = range.start;
    for (let i = firstBlockEndingAfter(blocks, range.start); i < blocks.length; i++) {
      const b = blocks[i]!;
      if (b.start >= range.end) break;
      const s = Math.max(b.start, cursor);
      const e = Math.min(b.end, range.end);
      if (s > cursor) push(cursor, s);
      if (e > s) push(s, e, b.kind === 'heading');
      cursor = Math.max(cursor, e);
    }
    if (cursor < range.end) push(cursor, range.end);
    return units;
  }

  /**
   * Cuts units into pieces of at most `limit` tokens, as coarse as possible: whole unit, then paragraphs,
   * then sentences, then whitespace-separated runs, then characters. Pieces are trimmed, in order, and
   * together cover every non-whitespace character of the units; each carries its exact token count.
   */
  private pieces(units: Unit[], limit: number): Piece[] {
    const out: Piece[] = [];
    for (let u = 0; u < units.length; u++) {
      const unit = units[u]!;
      const next = units[u + 1];
      if (!unit.heading || !next || next.heading) {
        this.split(unit, limit, 'paragraph', out);
        continue;
      }
      // A heading alone is a useless retrieval unit: when it cannot share a chunk with the whole next piece,
      // cut that piece finer (sentences, then words) so the heading travels with the start of its content.
      const heading: Piece[] = [];
      this.split(unit, limit, 'paragraph', heading);
      let rest: Piece[] = [];
      this.split(next, limit, 'paragraph', rest);
      const last = heading[heading.length - 1]!;
      for (;;) {
        const first = rest[0];
        if (!first || last.tokens + this.joinCost(last.end, first.start) + first.tokens <= limit) break;
        const finer = this.refine(first, limit);
        if (!finer) break;
        rest = [...finer, ...rest.slice(1)];
      }
      out.push(...heading, ...rest);
      u++;
    }
    return out;
  }

  /** The same text as `p` in smaller pieces (sentences, else single words), or undefined if it is one word. */
  private refine(p: Piece, limit: number): Piece[] | undefined {
    let parts = this.sentences(p);
    if (parts.length < 2) parts = wordRanges(this.text, p);
    if (parts.length < 2) return undefined;
    const out: Piece[] = [];
    for (const part of parts) this.split(part, limit, 'word', out);
    return out;
  }

  /** Estimated tokens added by joining two pieces: a newline gap costs one, a space merges into the word. */
  private joinCost(end: number, start: number): number {
    for (let k = end; k < start; k++) if (this.text.charCodeAt(k) === 10) return 1;
    return 0;
  }

  private split(r: Range, limit: number, stage: 'paragraph' | 'sentence' | 'word', out: Piece[]): void {
    if (!this.exceeds(r.start, r.end, limit)) {
      out.push({ ...r, tokens: this.count(r.start, r.end) });
      return;
    }
    if (stage === 'paragraph') {
      const paras = paragraphBlocks(this.text, r.start, r.end);
      if (paras.length > 1) for (const p of paras) this.split(p, limit, 'sentence', out);
      else this.split(r, limit, 'sentence', out);
      return;
    }
    if (stage === 'sentence') {
      const sentences = this.sentences(r);
      if (sentences.length > 1) for (const s of sentences) this.split(s, limit, 'word', out);
      else this.splitWords(r, limit, out);
      return;
    }
    this.splitWords(r, limit, out);
  }

  private sentences(r: Range): Range[] {
    const out: Range[] = [];
    sentenceSegmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
    for (const seg of sentenceSegmenter.segment(this.text.slice(r.start, r.end))) {
      const t = trim(this.text, r.start + seg.index, r.start + seg.index + seg.segment.length);
      if (t) out.push(t);
    }
    return out;
  }

  /**
   * Greedy runs of whole words, each the longest that fits (galloping + binary search on exact counts). Every
   * word costs at least one token (see `exceeds`), so no run spans more than `limit` words: the words are read
   * `limit + 1` at a time, never all at once (a 50 MB paragraph without sentence breaks has millions).
   */
  private splitWords(r: Range, limit: number, out: Piece[]): void {
    let pos = r.start;
    for (;;) {
      const words = wordRanges(this.text, { start: pos, end: r.end }, limit + 1);
      const first = words[0];
      if (first === undefined) return;
      const alone = this.count(first.start, first.end);
      if (alone > limit) {
        this.splitChars(first, limit, out);
        pos = first.end;
        continue;
      }
      const j = this.longestFit(0, words.length - 1, limit, (k) => this.count(first.start, words[k]!.end));
      const last = words[j]!;
      out.push({ start: first.start, end: last.end, tokens: this.count(first.start, last.end) });
      pos = last.end;
    }
  }

  /** Last resort for a "word" longer than the budget (base64, long CJK runs): cut between code points. */
  private splitChars(r: Range, limit: number, out: Piece[]): void {
    let s = r.start;
    while (s < r.end) {
      const bounds: number[] = [];
      for (let p = s; p < r.end; ) {
        p += isHighSurrogate(this.text.charCodeAt(p)) && p + 1 < r.end ? 2 : 1;
        bounds.push(p);
        // Enough candidates for any plausible piece; further ones are generated on the next round.
        if (bounds.length > limit * 64) break;
      }
      if (this.count(s, bounds[0]!) > limit) {
        throw new QuarryError(
          'INVALID_ARGUMENT',
          `maxTokens ${limit} is too small: a single character needs more tokens`,
          { maxTokens: limit },
        );
      }
      const k = this.longestFit(0, bounds.length - 1, limit, (idx) => this.count(s, bounds[idx]!));
      const e = bounds[k]!;
      out.push({ start: s, end: e, tokens: this.count(s, e) });
      s = e;
    }
  }

  /**
   * Largest index in [lo, hi] whose measure fits, given that `lo` fits. Gallops first so the cost tracks the
   * size of the answer, not of the whole range (a 1 MB paragraph must not be re-tokenised per piece).
   */
  private longestFit(lo: number, hi: number, limit: number, measure: (k: number) => number): number {
    let good = lo;
    let bad = hi + 1;
    for (let step = 1; good + step < bad; step *= 2) {
      if (measure(good + step) > limit) {
        bad = good + step;
        break;
      }
      good += step;
    }
    while (bad - good > 1) {
      const mid = good + ((bad - good) >> 1);
      if (measure(mid) <= limit) good = mid;
      else bad = mid;
    }
    return good;
  }

  /**
   * Greedy packing of consecutive pieces into groups of at most `limit` tokens. Sums of piece counts are only
   * an estimate of the joined text's count (BPE is not additive), so every multi-piece group is verified.
   * With `overlap`, each group after the first starts inside the previous one, at a sentence boundary.
   */
  private pack(pieces: Piece[], limit: number, overlap: number): Piece[] {
    const groups: Piece[] = [];
    let i = 0;
    while (i < pieces.length) {
      const first = pieces[i]!;
      const prev = groups[groups.length - 1];
      const candidates: OverlapCandidate[] = prev && overlap > 0 ? this.overlapCandidates(prev, overlap) : [];
      candidates.push({ start: first.start, tokens: 0 }); // no overlap: always fits, since each piece does
      let placed: Piece | undefined;
      let next = i + 1;
      for (const cand of candidates) {
        const join = cand.start === first.start || !prev ? 0 : this.joinCost(prev.end, first.start);
        let est = cand.tokens + join + first.tokens;
        if (est > limit) continue;
        let j = i;
        for (;;) {
          const following = pieces[j + 1];
          if (!following) break;
          const add = this.joinCost(pieces[j]!.end, following.start) + following.tokens;
          if (est + add > limit) break;
          est += add;
          j++;
        }
        const measure = (k: number): number =>
          cand.start === first.start && k === i ? first.tokens : this.count(cand.start, pieces[k]!.end);
        if (measure(j) > limit) {
          if (measure(i) > limit) continue; // this overlap is too long once joined: try a shorter one
          j = this.longestFit(i, j - 1, limit, measure);
        }
        placed = { start: cand.start, end: pieces[j]!.end, tokens: measure(j) };
        next = j + 1;
        break;
      }
      // Unreachable: the no-overlap candidate with a single piece always fits.
      groups.push(placed ?? { ...first });
      i = next;
    }
    return groups;
  }

  /**
   * Starts of trailing whole-sentence runs of `prev` worth at most `overlap` tokens, longest first. Never the
   * whole previous chunk, so chunk starts strictly increase.
   */
  private overlapCandidates(prev: Range, overlap: number): OverlapCandidate[] {
    const sentences = this.sentences(prev);
    const out: OverlapCandidate[] = [];
    let tokens = 0;
    for (let k = sentences.length - 1; k >= 1; k--) {
      const s = sentences[k]!;
      const after = sentences[k + 1];
      tokens += this.count(s.start, s.end) + (after ? this.joinCost(s.end, after.start) : 0);
      if (tokens > overlap) break;
      out.push({ start: s.start, tokens });
    }
    return out.reverse();
  }
}

/** Blocks are sorted and disjoint, so their ends are sorted too: binary search instead of a scan per section. */
function firstBlockEndingAfter(blocks: Block[], offset: number): number {
  let lo = 0;
  let hi = blocks.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (blocks[mid]!.end <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The whitespace-separated words of `r` (at most `max` of them, from its start), as ranges of `text`. */
function wordRanges(text: string, r: Range, max = Number.POSITIVE_INFINITY): Range[] {
  const words: Range[] = [];
  const re = /\S+/g;
  re.lastIndex = r.start;
  for (let m = re.exec(text); m !== null && m.index < r.end && words.length < max; m = re.exec(text)) {
    words.push({ start: m.index, end: Math.min(r.end, m.index + m[0].length) });
  }
  return words;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * Citation markers in generated answers, read while the answer streams: the generator feeds text deltas and
 * learns of each `[n]` marker and each finished sentence (with its markers) as soon as they are certain, so a
 * citation of a source that was never in the context can be flagged before the answer is complete.
 *
 * Recognised: `[1]`, `[1, 3]`, `[1][2]`, `[1-3]`, `[1–3]`, `【1】`. Not citations: `[x]`, markdown links
 * `[1](url)` and reference links `[text][1]`, array indexing and literals (`items[1].name`, `x = [1, 2]`),
 * anything inside inline code or fenced code blocks, and `[0]` (sources are numbered from 1).
 */

export interface CitationMarker {
  /** Offsets of the marker in the answer text (end exclusive). */
  start: number;
  end: number;
  raw: string;
  /** Source numbers it cites, ranges expanded, in written order, without repeats. */
  sources: number[];
}

export type SentenceKind = 'prose' | 'heading' | 'code';

export interface AnswerSentence {
  /** 0-based position among the answer's sentences. */
  index: number;
  /** Offsets in the answer text (end exclusive), surrounding whitespace excluded, markers included. */
  start: number;
  end: number;
  text: string;
  /** The sentence with its citation markers and leading list/quote markup removed: what is checked. */
  claim: string;
  markers: CitationMarker[];
  /** Union of the markers' sources, in order of first citation. */
  sources: number[];
  kind: SentenceKind;
}

export type CitationStreamEvent =
  | {
      type: 'marker';
      marker: CitationMarker;
      /** Cited numbers that are not among `knownSources` (empty when no known sources were given). */
      unknown: number[];
    }
  | { type: 'sentence'; sentence: AnswerSentence };

export interface CitationStreamOptions {
  /** Source numbers that were in the context; markers citing others are reported in `unknown`. */
  knownSources?: Iterable<number>;
}

/** Longest marker body considered (`[1, 2, 3, …]`); longer bracketed digit runs are data, not citations. */
const MAX_BODY = 48;
/** Widest range accepted in `[a-b]`; wider is more likely a number range than a citation. */
const MAX_RANGE = 20;
const BODY_CHAR = /[ \t\d,;\-–]/;
const BODY_PART = /^(\d{1,3})(?:[ \t]*[-–][ \t]*(\d{1,3}))?$/;
const IDENT_CHAR = /[\p{L}\p{N}_]/u;
const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;
const FENCE_PREFIX = /^ {0,3}[`~]*$/;
const FENCE_CLOSE = /^ {0,3}(`{3,}|~{3,})[ \t]*\r?$/;
const LETTER = /\p{L}/u;
const CONTENT = /[\p{L}\p{N}]/u;
const LEADING_MARKUP = /^(?:\s|#{1,6}\s|[-*+]\s|\d{1,3}[.)]\s|>\s?|\|)+/;
const HEADING = /^#{1,6}\s/;
// Sentence segmentation would end a sentence after these; they rarely end one.
const ABBREVIATION = /(?:^|[\s(])(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|vs|e\.g|i\.e|cf|approx|Fig|Vol|pp?)\.\s*$/i;

let sentenceSegmenter: Intl.Segmenter | undefined;

/** Source numbers of a marker body (`1, 3-4`), or undefined when it is not a citation. */
function parseBody(body: string): number[] | undefined {
  const out: number[] = [];
  for (const part of body.split(/[,;]/)) {
    const m = BODY_PART.exec(part.trim());
    if (m === null) return undefined;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from < 1 || to < from || to - from > MAX_RANGE) return undefined;
    for (let n = from; n <= to; n++) if (!out.includes(n)) out.push(n);
  }
  return out.length > 0 ? out : undefined;
}

/**
 * Incremental parser: `push` deltas, then `end`. Everything is decided on the text seen so far, waiting only
 * where the next characters could change the outcome (an unclosed `[1`, a marker that a `(` would turn into a
 * link, a sentence boundary that the next word could cancel). Feeding the text in any split gives the same
 * events as feeding it whole.
 */
export class CitationStreamParser {
  private buf = '';
  /** Everything before this offset has been classified (code, markers). */
  private pos = 0;
  private lineStart = true;
  private fence: { char: string; len: number; start: number } | undefined;
  /** Backtick count of the open inline code span (0 = none). */
  private inlineTicks = 0;
  private lastMarkerEnd = -1;
  private readonly fenceRanges: Array<[number, number]> = [];
  private readonly allMarkers: CitationMarker[] = [];
  private readonly allSentences: AnswerSentence[] = [];
  /** Sentences before this offset have been emitted. */
  private sentStart = 0;
  private ended = false;
  private readonly known: ReadonlySet<number> | undefined;

  constructor(options: CitationStreamOptions = {}) {
    this.known = options.knownSources === undefined ? undefined : new Set(options.knownSources);
  }

  get text(): string {
    return this.buf;
  }

  get markers(): readonly CitationMarker[] {
    return this.allMarkers;
  }

  get sentences(): readonly AnswerSentence[] {
    return this.allSentences;
  }

  push(delta: string): CitationStreamEvent[] {
    if (this.ended) throw new Error('CitationStreamParser: push after end');
    this.buf += delta;
    return this.advance(false);
  }

  end(): CitationStreamEvent[] {
    if (this.ended) return [];
    const events = this.advance(true);
    this.ended = true;
    return events;
  }

  private advance(final: boolean): CitationStreamEvent[] {
    const events: CitationStreamEvent[] = [];
    for (const marker of this.scan(final)) {
      const unknown = this.known === undefined ? [] : marker.sources.filter((n) => !this.known!.has(n));
      events.push({ type: 'marker', marker, unknown });
    }
    for (const sentence of this.flushSentences(final)) events.push({ type: 'sentence', sentence });
    return events;
  }

  /** Classifies text from `pos` on; stops where more input is needed to decide. */
  private scan(final: boolean): CitationMarker[] {
    const b = this.buf;
    const found: CitationMarker[] = [];
    let i = this.pos;
    while (i < b.length) {
      if (this.lineStart) {
        const nl = b.indexOf('\n', i);
        const lineEnd = nl === -1 ? b.length : nl;
        if (this.fence !== undefined) {
          if (nl === -1 && !final) break;
          const close = FENCE_CLOSE.exec(b.slice(i, lineEnd));
          if (close !== null && close[1]![0] === this.fence.char && close[1]!.length >= this.fence.len) {
            this.fenceRanges.push([this.fence.start, lineEnd]);
            this.fence = undefined;
          }
          i = nl === -1 ? b.length : nl + 1;
          continue;
        }
        const head = b.slice(i, Math.min(lineEnd, i + 64));
        if (nl === -1 && !final && FENCE_PREFIX.test(head)) break;
        const open = FENCE_OPEN.exec(head);
        if (open !== null && this.inlineTicks === 0) {
          if (nl === -1 && !final) break;
          this.fence = { char: open[1]![0]!, len: open[1]!.length, start: i };
          i = nl === -1 ? b.length : nl + 1;
          continue;
        }
        this.lineStart = false;
      }
      const c = b[i]!;
      if (c === '\n') {
        // An unclosed inline code span ends with its paragraph.
        if (this.inlineTicks > 0 && i > 0 && b[i - 1] === '\n') this.inlineTicks = 0;
        this.lineStart = true;
        i++;
        continue;
      }
      if (c === '`') {
        let j = i;
        while (j < b.length && b[j] === '`') j++;
        if (j === b.length && !final) break;
        const n = j - i;
        if (this.inlineTicks === 0) this.inlineTicks = n;
        else if (this.inlineTicks === n) this.inlineTicks = 0;
        i = j;
        continue;
      }
      if (this.inlineTicks === 0 && c === '(' && i > 0 && b[i - 1] === ']') {
        // A link destination (`[text](https://host/a[1])`) is an address, not prose.
        let j = i + 1;
        while (j < b.length && b[j] !== ')' && !/\s/.test(b[j]!)) j++;
        if (j === b.length && !final) break;
        i = j;
        continue;
      }
      if (this.inlineTicks === 0 && (c === '[' || c === '【')) {
        const r = this.tryMarker(i, final);
        if (r === 'wait') break;
        if (r !== undefined) {
          found.push(r);
          this.allMarkers.push(r);
          this.lastMarkerEnd = r.end;
          i = r.end;
          continue;
        }
      }
      i++;
    }
    if (final && this.fence !== undefined) {
      this.fenceRanges.push([this.fence.start, b.length]);
      this.fence = undefined;
    }
    this.pos = i;
    return found;
  }

  private tryMarker(i: number, final: boolean): CitationMarker | undefined | 'wait' {
    const b = this.buf;
    const close = b[i] === '[' ? ']' : '】';
    let j = i + 1;
    while (j < b.length && j - i <= MAX_BODY && BODY_CHAR.test(b[j]!)) j++;
    if (j >= b.length) return final ? undefined : 'wait';
    if (b[j] !== close) return undefined;
    const sources = parseBody(b.slice(i + 1, j));
    if (sources === undefined) return undefined;
    const end = j + 1;
    const prev = i > 0 ? b[i - 1]! : '';
    // `[text][1]` is a reference link and `a[1][2]` indexing: a bracket right after `]` cites only when that
    // `]` closed a citation.
    if (prev === ']' && this.lastMarkerEnd !== i) return undefined;
    let k = i - 1;
    while (k >= 0 && (b[k] === ' ' || b[k] === '\t')) k--;
    if (k >= 0 && b[k] === '=') return undefined;
    if (end >= b.length && !final) return 'wait';
    const next = b[end] ?? '';
    if (close === ']' && next === '(') return undefined;
    if (next === ':' && /^[ \t]*$/.test(b.slice(b.lastIndexOf('\n', i - 1) + 1, i))) return undefined;
    if (prev !== '' && IDENT_CHAR.test(prev)) {
      // `tokens[1].` ends a sentence; `items[1].name`, `f[1](x)`, `a[1] = 2` are code.
      if ((next === '.' || next === ' ') && end + 1 >= b.length && !final) return 'wait';
      const after = b[end + 1] ?? '';
      if (next === '=' || (next === '.' && IDENT_CHAR.test(after)) || (next === ' ' && after === '='))
        return undefined;
    }
    return { start: i, end, raw: b.slice(i, end), sources };
  }

  /** The text in [from, to) with citation markers blanked out (same length, so offsets carry over). */
  private masked(from: number, to: number): string {
    // Markers are in text order and the window only moves forward: look back from the newest.
    let first = this.allMarkers.length;
    while (first > 0 && this.allMarkers[first - 1]!.end > from) first--;
    return this.blank(
      this.allMarkers.slice(first).filter((m) => m.start < to),
      from,
      to,
    );
  }

  private blank(markers: CitationMarker[], from: number, to: number): string {
    let out = '';
    let at = from;
    for (const m of markers) {
      const s = Math.max(m.start, from);
      const e = Math.min(m.end, to);
      out += this.buf.slice(at, s) + ' '.repeat(e - s);
      at = e;
    }
    return out + this.buf.slice(at, to);
  }

  private flushSentences(final: boolean): AnswerSentence[] {
    const from = this.sentStart;
    const to = this.pos;
    if (to <= from) return [];
    const masked = this.masked(from, to);
    sentenceSegmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
    const segs: Array<{ start: number; end: number }> = [];
    for (const s of sentenceSegmenter.segment(masked)) {
      const last = segs[segs.length - 1];
      if (last !== undefined && ABBREVIATION.test(masked.slice(last.start, last.end))) {
        last.end = s.index + s.segment.length;
      } else segs.push({ start: s.index, end: s.index + s.segment.length });
    }
    // A boundary is certain once a letter follows it (the sentence rules look ahead at most that far); the
    // last segment always waits for more text.
    let commit = segs.length;
    if (!final) {
      commit = 0;
      for (let k = segs.length - 1; k > 0; k--)
        if (LETTER.test(masked.slice(segs[k]!.start))) {
          commit = k;
          break;
        }
    }
    if (commit === 0) return [];
    // Segments without content (a marker alone after a line break) belong to the sentence before them.
    const groups: Array<{ start: number; end: number }> = [];
    for (const s of segs.slice(0, commit)) {
      const g = groups[groups.length - 1];
      if (!CONTENT.test(masked.slice(s.start, s.end)) && g !== undefined) g.end = s.end;
      else groups.push({ ...s });
    }
    this.sentStart = from + segs[commit - 1]!.end;
    const out: AnswerSentence[] = [];
    for (const g of groups) {
      const sentence = this.makeSentence(from + g.start, from + g.end, masked.slice(g.start, g.end));
      if (sentence === undefined) continue;
      out.push(sentence);
      this.allSentences.push(sentence);
    }
    return out;
  }

  private makeSentence(from: number, to: number, masked: string): AnswerSentence | undefined {
    if (!CONTENT.test(masked)) return undefined;
    let start = from;
    let end = to;
    while (start < end && /\s/.test(this.buf[start]!)) start++;
    while (end > start && /\s/.test(this.buf[end - 1]!)) end--;
    const text = this.buf.slice(start, end);
    const markers = this.allMarkers.filter((m) => m.start >= from && m.end <= to);
    const sources: number[] = [];
    for (const m of markers) for (const n of m.sources) if (!sources.includes(n)) sources.push(n);
    const inFence =
      (this.fence !== undefined && start >= this.fence.start) ||
      this.fenceRanges.some(([s, e]) => start >= s && start < e);
    const trimmed = masked.trim();
    const kind: SentenceKind = inFence ? 'code' : HEADING.test(trimmed) ? 'heading' : 'prose';
    const claim = trimmed
      .replace(LEADING_MARKUP, '')
      .replace(/\s+/g, ' ')
      .replace(/ ([.,;:!?)])/g, '$1')
      .trim();
    return { index: this.allSentences.length, start, end, text, claim, markers, sources, kind };
  }
}

/** Markers and sentences of a complete answer (the streaming parser fed in one piece). */
export function parseAnswerCitations(
  text: string,
  options: CitationStreamOptions = {},
): { markers: CitationMarker[]; sentences: AnswerSentence[] } {
  const parser = new CitationStreamParser(options);
  parser.push(text);
  parser.end();
  return { markers: [...parser.markers], sentences: [...parser.sentences] };
}

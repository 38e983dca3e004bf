/**
 * Freshness, applied to the fused candidate list before the final top-k: optional exponential time decay by
 * document timestamp, and "newest version only" — among documents that are versions of the same thing
 * (same value of a grouping field), keep only the newest. Time ranges are plain metadata filters.
 */
import { QuarryError } from '../errors.js';
import type { CatalogDocument } from '../retrieve/catalog.js';

export interface FreshnessOptions {
  /** Half-life in days; undefined = no decay. A document `halfLifeDays` old keeps half its freshness boost. */
  halfLifeDays?: number;
  /** Share of the score subject to decay (0–1): score · ((1 − w) + w · 0.5^(age/halfLife)). Default 0.3. */
  decayWeight?: number;
  /** Timestamp field: `updated_at` (default) or `created_at`. */
  timestampField?: 'updated_at' | 'created_at';
  /** Field whose equal values mark versions of one document (e.g. `fields.slug`); keep only the newest. */
  latestBy?: string;
  /** "Now" for age computation (tests, reproducible evals). */
  now?: number;
}

export interface Ranked {
  chunkId: number;
  group: number;
  score: number;
}

function readField(doc: CatalogDocument, field: string): unknown {
  const parts = field.split('.');
  let cur: unknown =
    parts[0] === 'fields' ? doc.fields : (doc as unknown as Record<string, unknown>)[parts[0]!];
  if (parts[0] !== 'fields' && cur === undefined) cur = doc.fields[parts[0]!];
  for (const p of parts.slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** A half-life of 0 or below would decay nothing (or grow old scores): reject it instead of ignoring it. */
export function checkFreshnessOptions(opts: FreshnessOptions): void {
  const h = opts.halfLifeDays;
  if (h !== undefined && !(Number.isFinite(h) && h > 0))
    throw new QuarryError('INVALID_ARGUMENT', `freshness.halfLifeDays must be a number > 0, got ${h}`, {
      option: 'freshness.halfLifeDays',
      value: h,
    });
  const w = opts.decayWeight;
  if (w !== undefined && !(Number.isFinite(w) && w >= 0 && w <= 1))
    throw new QuarryError('INVALID_ARGUMENT', `freshness.decayWeight must be in [0, 1], got ${w}`, {
      option: 'freshness.decayWeight',
      value: w,
    });
}

/** Re-score and filter; returns a new list sorted by the adjusted score, with what was done per candidate. */
export function applyFreshness<T extends Ranked>(
  ranked: T[],
  docOf: (group: number) => CatalogDocument | undefined,
  opts: FreshnessOptions,
): {
  ranked: T[];
  adjusted: Array<{ chunkId: number; ageDays: number; factor: number }>;
  superseded: number[];
} {
  checkFreshnessOptions(opts);
  const now = opts.now ?? Date.now();
  const field = opts.timestampField ?? 'updated_at';
  const adjusted: Array<{ chunkId: number; ageDays: number; factor: number }> = [];
  let out = ranked;
  const superseded: number[] = [];
  if (opts.latestBy !== undefined) {
    const newest = new Map<string, { group: number; t: number }>();
    for (const r of ranked) {
      const doc = docOf(r.group);
      if (doc === undefined) continue;
      const key = readField(doc, opts.latestBy);
      if (key === undefined || key === null) continue;
      const k = JSON.stringify(key);
      const t = Date.parse(doc[field]);
      const cur = newest.get(k);
      if (cur === undefined || t > cur.t || (t === cur.t && doc.version > (docOf(cur.group)?.version ?? 0))) {
        newest.set(k, { group: r.group, t });
      }
    }
    out = out.filter((r) => {
      const doc = docOf(r.group);
      const key = doc === undefined ? undefined : readField(doc, opts.latestBy!);
      if (key === undefined || key === null) return true;
      const keep = newest.get(JSON.stringify(key))?.group === r.group;
      if (!keep) superseded.push(r.chunkId);
      return keep;
    });
  }
  if (opts.halfLifeDays !== undefined) {
    const w = opts.decayWeight ?? 0.3;
    out = out
      .map((r) => {
        const doc = docOf(r.group);
        const t = doc === undefined ? Number.NaN : Date.parse(doc[field]);
        const ageDays = Number.isFinite(t) ? Math.max(0, (now - t) / 86_400_000) : 0;
        const factor = 1 - w + w * 0.5 ** (ageDays / opts.halfLifeDays!);
        adjusted.push({
          chunkId: r.chunkId,
          ageDays: Math.round(ageDays * 10) / 10,
          factor: Math.round(factor * 1e4) / 1e4,
        });
        return { ...r, score: r.score * factor };
      })
      .sort((a, b) => b.score - a.score || a.chunkId - b.chunkId);
  }
  return { ranked: out, adjusted, superseded };
}

/**
 * Finds configuration keys that no schema knows (zod objects strip them silently) and the nearest valid key
 * for each, so `{"retrieval":{"fusoin":…}}` is an error naming `retrieval.fusion` instead of a setting that
 * does nothing. Walks the input beside the schema, so every nested section is checked, wherever it is defined.
 */
import type { z } from 'zod';

export interface UnknownKey {
  /** Dotted path of the unknown key, e.g. `retrieval.fusoin`. */
  path: string;
  /** Dotted path of the closest valid key at the same level, when one is close enough to be a typo. */
  suggestion?: string;
  /** The valid keys at that level. */
  valid: string[];
}

interface SchemaDef {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  valueType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  catchall?: z.ZodType;
}

const defOf = (s: z.ZodType): SchemaDef => (s as unknown as { _zod: { def: SchemaDef } })._zod.def;

/** Strip wrappers (optional, default, nullable, pipes and preprocessing) down to the schema that holds keys. */
function unwrap(schema: z.ZodType): SchemaDef {
  let def = defOf(schema);
  for (let i = 0; i < 32; i++) {
    if (def.innerType !== undefined) def = defOf(def.innerType);
    else if (def.type === 'pipe' && def.in !== undefined && def.out !== undefined)
      def = defOf(defOf(def.in).type === 'transform' ? def.out : def.in);
    else break;
  }
  return def;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Every key of `input` that `schema` would strip, with the nearest valid key. */
export function findUnknownKeys(schema: z.ZodType, input: unknown, prefix: string[] = []): UnknownKey[] {
  const def = unwrap(schema);
  if (def.type === 'object' && def.shape !== undefined && isPlainObject(input)) {
    // An object with a catch-all (passthrough or a typed catch-all) accepts any key by design.
    const open = def.catchall !== undefined && defOf(def.catchall).type !== 'never';
    const out: UnknownKey[] = [];
    const valid = Object.keys(def.shape);
    for (const [key, value] of Object.entries(input)) {
      // Own keys only: `__proto__` or `constructor` in a config file must be an unknown key, not Object's.
      const child = Object.hasOwn(def.shape, key) ? def.shape[key] : undefined;
      if (child !== undefined) out.push(...findUnknownKeys(child, value, [...prefix, key]));
      else if (!open) {
        const near = nearestKey(key, valid);
        out.push({
          path: [...prefix, key].join('.'),
          ...(near === undefined ? {} : { suggestion: [...prefix, near].join('.') }),
          valid,
        });
      }
    }
    return out;
  }
  if (def.type === 'record' && def.valueType !== undefined && isPlainObject(input))
    return Object.entries(input).flatMap(([k, v]) => findUnknownKeys(def.valueType!, v, [...prefix, k]));
  if (def.type === 'array' && def.element !== undefined && Array.isArray(input))
    return input.flatMap((v, i) => findUnknownKeys(def.element!, v, [...prefix, String(i)]));
  if (def.type === 'union' && def.options !== undefined) {
    // The member that fits best (fewest unknown keys) is the one the user meant.
    let best: UnknownKey[] | undefined;
    for (const option of def.options) {
      const found = findUnknownKeys(option, input, prefix);
      if (best === undefined || found.length < best.length) best = found;
      if (found.length === 0) break;
    }
    return best ?? [];
  }
  return [];
}

/** The valid key closest to `key` (case-insensitive edit distance with transpositions), if it looks like a typo. */
export function nearestKey(key: string, valid: string[]): string | undefined {
  const k = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const v of valid) {
    const d = osaDistance(k, v.toLowerCase());
    if (d < bestDistance) {
      best = v;
      bestDistance = d;
    }
  }
  const allowed = Math.max(1, Math.min(3, Math.floor(key.length / 3)));
  return bestDistance <= allowed ? best : undefined;
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent transpositions. */
function osaDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(
        d[(i - 1) * cols + j]! + 1,
        d[i * cols + j - 1]! + 1,
        d[(i - 1) * cols + j - 1]! + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[(i - 2) * cols + j - 2]! + 1);
      d[i * cols + j] = v;
    }
  }
  return d[rows * cols - 1]!;
}

/** One line per unknown key: `unknown key retrieval.fusoin (did you mean retrieval.fusion?)`. */
export function describeUnknownKey(u: UnknownKey): string {
  if (u.suggestion !== undefined) return `unknown key ${u.path} (did you mean ${u.suggestion}?)`;
  return `unknown key ${u.path} (valid keys here: ${u.valid.join(', ')})`;
}

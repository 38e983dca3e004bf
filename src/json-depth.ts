/**
 * Nesting depth of external JSON, measured without recursion: records, front matter and filters are walked
 * recursively further on (hashing, cache keys, compilation), so anything nested past its limit is refused
 * first with its own error code rather than overflowing the stack as `INTERNAL`.
 */

/** Whether `value` nests arrays/objects more than `max` levels deep (a scalar is depth 0). Iterative. */
export function exceedsDepth(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

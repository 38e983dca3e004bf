import { describe, expect, it } from 'vitest';
import {
  assertSameModel,
  createLimiter,
  type Embedder,
  type EmbedOptions,
  lengthRouter,
  resolveDimension,
  withBatching,
} from '../../../src/embed/types.js';
import { QuarryError } from '../../../src/errors.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Records batch sizes and the peak number of concurrent calls; vector = [number parsed from the text]. */
class Recorder implements Embedder {
  batches: number[] = [];
  active = 0;
  peak = 0;
  kinds: (string | undefined)[] = [];
  constructor(
    readonly id = 'rec:1',
    public dimension = 1,
    private readonly delay = (_batch: string[]) => 10,
    private readonly failOn?: string,
  ) {}
  async embed(texts: string[], opts: EmbedOptions = {}): Promise<Float32Array[]> {
    this.batches.push(texts.length);
    this.kinds.push(opts.kind);
    this.active++;
    this.peak = Math.max(this.peak, this.active);
    try {
      await sleep(this.delay(texts));
      if (this.failOn && texts.includes(this.failOn)) throw new Error(`cannot embed ${this.failOn}`);
      return texts.map((t) => Float32Array.of(Number(t)));
    } finally {
      this.active--;
    }
  }
}

const numbers = (n: number) => Array.from({ length: n }, (_, i) => String(i));

describe('withBatching', () => {
  it('splits into batches, bounds concurrency and preserves order', async () => {
    // Later batches finish first: order must still follow the input.
    const inner = new Recorder('rec:1', 1, (b) => 40 - Number(b[0]) / 2);
    const e = withBatching(inner, { batchSize: 5, concurrency: 3 });
    const out = await e.embed(numbers(23), { kind: 'query' });
    expect(out.map((v) => v[0])).toEqual(numbers(23).map(Number));
    expect(inner.batches).toEqual([5, 5, 5, 5, 3]);
    expect(inner.peak).toBe(3);
    expect(inner.kinds.every((k) => k === 'query')).toBe(true);
    expect(e.id).toBe('rec:1');
    expect(e.dimension).toBe(1);
  });

  it('shares the concurrency bound across concurrent callers', async () => {
    const inner = new Recorder();
    const e = withBatching(inner, { batchSize: 1, concurrency: 2 });
    await Promise.all([e.embed(numbers(5)), e.embed(numbers(5)), e.embed(numbers(5))]);
    expect(inner.peak).toBe(2);
    expect(inner.batches).toHaveLength(15);
  });

  it('fails the call on the first failing batch and skips batches not started', async () => {
    const inner = new Recorder('rec:1', 1, () => 10, '2');
    const e = withBatching(inner, { batchSize: 1, concurrency: 1 });
    await expect(e.embed(numbers(10))).rejects.toThrow('cannot embed 2');
    await sleep(30);
    expect(inner.batches.length).toBe(3);
  });

  it('rejects a provider that returns the wrong number of vectors', async () => {
    const bad: Embedder = { id: 'bad', dimension: 1, embed: async () => [Float32Array.of(1)] };
    const err = await withBatching(bad, { batchSize: 2, concurrency: 1 })
      .embed(['a', 'b'])
      .catch((x: unknown) => x);
    expect(err).toBeInstanceOf(QuarryError);
    expect((err as QuarryError).code).toBe('EMBEDDING_FAILED');
  });

  it('honours an abort signal', async () => {
    const inner = new Recorder('rec:1', 1, () => 30);
    const e = withBatching(inner, { batchSize: 1, concurrency: 1 });
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error('stop')), 45);
    await expect(e.embed(numbers(10), { signal: ctl.signal })).rejects.toThrow('stop');
    expect(inner.batches.length).toBeLessThanOrEqual(3);
  });

  it('validates its options and passes close through', async () => {
    const inner = new Recorder();
    expect(() => withBatching(inner, { batchSize: 0, concurrency: 1 })).toThrow(/batchSize/);
    expect(() => withBatching(inner, { batchSize: 1, concurrency: 0 })).toThrow(/concurrency/);
    let closed = false;
    const closable: Embedder = {
      ...inner,
      id: 'c',
      dimension: 1,
      embed: inner.embed.bind(inner),
      close: async () => {
        closed = true;
      },
    };
    await withBatching(closable, { batchSize: 1, concurrency: 1 }).close?.();
    expect(closed).toBe(true);
  });
});

describe('createLimiter', () => {
  it('runs FIFO with at most n at once', async () => {
    const l = createLimiter(2);
    const order: number[] = [];
    let peak = 0;
    await Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        l.run(async () => {
          peak = Math.max(peak, l.active);
          order.push(i);
          await sleep(5);
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('lengthRouter', () => {
  const small = new Recorder('onnx:small', 4);
  const large = new Recorder('openai:large', 8);

  it('sends short queries to the small model and the rest to the last route', () => {
    const r = lengthRouter([{ embedder: small, maxQueryChars: 20 }, { embedder: large }]);
    expect(r.route('fox').id).toBe('onnx:small');
    expect(r.route('x'.repeat(20)).id).toBe('onnx:small');
    expect(r.route('x'.repeat(21)).id).toBe('openai:large');
    expect(r.embedders.map((e) => e.id)).toEqual(['onnx:small', 'openai:large']);
    expect(r.explain('what is the default chunk size')).toEqual({
      embedder: 'openai:large',
      route: 1,
      chars: 30,
      tokens: 6,
    });
  });

  it('counts characters as code points and supports token limits', () => {
    const r = lengthRouter([{ embedder: small, maxQueryTokens: 3 }, { embedder: large }], {
      countTokens: (t) => t.split(/\s+/).length,
    });
    expect(r.route('a b c').id).toBe('onnx:small');
    expect(r.route('a b c d').id).toBe('openai:large');
    const byChars = lengthRouter([{ embedder: small, maxQueryChars: 2 }, { embedder: large }]);
    expect(byChars.route('😀😀').id).toBe('onnx:small');
  });

  it('uses the last route as the fallback whatever its limit', () => {
    const r = lengthRouter([
      { embedder: small, maxQueryChars: 3 },
      { embedder: large, maxQueryChars: 5 },
    ]);
    expect(r.route('a very long query').id).toBe('openai:large');
  });

  it('rejects empty route lists, duplicate models and bad limits', () => {
    expect(() => lengthRouter([])).toThrow(/at least one route/);
    expect(() => lengthRouter([{ embedder: small }, { embedder: small }])).toThrow(/same model/);
    expect(() => lengthRouter([{ embedder: small, maxQueryChars: 0 }, { embedder: large }])).toThrow(
      /maxQueryChars/,
    );
  });
});

describe('assertSameModel and resolveDimension', () => {
  it('accepts the same model and refuses another id or dimension', () => {
    const e = new Recorder('onnx:abc', 384);
    expect(() => assertSameModel({ modelId: 'onnx:abc', dimension: 384 }, e)).not.toThrow();
    expect(() => assertSameModel({ modelId: 'onnx:abc', dimension: 768 }, e)).toThrow(
      /"onnx:abc" \(dimension 768\) but the embedder is "onnx:abc" \(dimension 384\)/,
    );
    expect(() => assertSameModel({ modelId: 'onnx:def', dimension: 384 }, e)).toThrow(QuarryError);
    // Unknown dimension: the id is checked, the vectors later.
    expect(() =>
      assertSameModel({ modelId: 'onnx:abc', dimension: 384 }, { id: 'onnx:abc', dimension: 0 }),
    ).not.toThrow();
  });

  it('learns an unknown dimension with one probe', async () => {
    const lazy: Embedder = { id: 'lazy', dimension: 0, embed: async (t) => t.map(() => new Float32Array(5)) };
    expect(await resolveDimension(lazy)).toBe(5);
    const known = new Recorder('k', 7);
    expect(await resolveDimension(known)).toBe(7);
    expect(known.batches).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { LsaModel } from '../../../src/embed/local/lsa.js';
import { isQuarryError } from '../../../src/errors.js';
import { TOPIC_CORPUS } from './corpus.js';

const cos = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
const texts = TOPIC_CORPUS.map((d) => d.text);

describe('LsaModel', () => {
  const model = LsaModel.train(texts, { dimensions: 8, seed: 7 });

  it('learns at most k dimensions and unit-length vectors', () => {
    expect(model.dimension).toBe(8);
    expect(model.trainingStats?.documents).toBe(texts.length);
    const v = model.embed(texts[0]!);
    expect(v.length).toBe(8);
    expect(cos(v, v)).toBeCloseTo(1, 5);
    // Singular values descending and positive.
    for (let i = 1; i < model.dimension; i++)
      expect(model.singularValues[i]!).toBeLessThanOrEqual(model.singularValues[i - 1]!);
    expect(model.singularValues[model.dimension - 1]!).toBeGreaterThan(0);
  });

  it('places documents of the same topic closer than documents of other topics', () => {
    const vecs = texts.map((t) => model.embed(t));
    let same = 0;
    let sameN = 0;
    let other = 0;
    let otherN = 0;
    for (let i = 0; i < vecs.length; i++) {
      for (let j = i + 1; j < vecs.length; j++) {
        const c = cos(vecs[i]!, vecs[j]!);
        if (TOPIC_CORPUS[i]!.topic === TOPIC_CORPUS[j]!.topic) {
          same += c;
          sameN++;
        } else {
          other += c;
          otherN++;
        }
      }
    }
    expect(same / sameN).toBeGreaterThan(other / otherN + 0.3);
  });

  it('folds queries in next to the documents of their topic', () => {
    const topics = [...new Set(TOPIC_CORPUS.map((d) => d.topic))];
    const queries: Record<string, string> = {
      cooking: 'simmer the garlic sauce in a pan',
      astronomy: 'telescope images of a distant galaxy',
      finance: 'interest rates and bond yields',
    };
    for (const topic of topics) {
      const q = model.embed(queries[topic]!);
      const best = TOPIC_CORPUS.map((d, i) => ({ topic: d.topic, c: cos(q, model.embed(texts[i]!)) })).sort(
        (a, b) => b.c - a.c,
      );
      expect(best.slice(0, 3).map((b) => b.topic)).toEqual([topic, topic, topic]);
    }
  });

  it('is deterministic: same corpus, options and seed give byte-identical models', () => {
    const again = LsaModel.train(texts, { dimensions: 8, seed: 7 });
    expect(Buffer.from(again.serialize()).equals(Buffer.from(model.serialize()))).toBe(true);
    expect(again.hash).toBe(model.hash);
    expect([...again.embed('galaxy telescope')]).toEqual([...model.embed('galaxy telescope')]);
    const otherSeed = LsaModel.train(texts, { dimensions: 8, seed: 8 });
    expect(otherSeed.hash).not.toBe(model.hash);
    // A different seed still finds the same subspace: similarities agree closely.
    const a = cos(model.embed(texts[0]!), model.embed(texts[1]!));
    const b = cos(otherSeed.embed(texts[0]!), otherSeed.embed(texts[1]!));
    expect(Math.abs(a - b)).toBeLessThan(0.05);
  });

  it('round-trips through bytes', () => {
    const bytes = model.serialize();
    const back = LsaModel.deserialize(bytes);
    expect(back.dimension).toBe(model.dimension);
    expect(back.vocabulary).toEqual(model.vocabulary);
    expect(back.options).toEqual(model.options);
    expect(back.hash).toBe(model.hash);
    for (const t of [texts[3]!, 'unseen words only', 'the galaxy'])
      expect([...back.embed(t)]).toEqual([...model.embed(t)]);
    // Copies survive the source buffer being reused.
    const copy = LsaModel.deserialize(Uint8Array.from(bytes));
    expect([...copy.projection]).toEqual([...model.projection]);
  });

  it('rescales to another Σ exponent without retraining', () => {
    const p0 = model.withSigmaPower(0);
    expect(p0.options.sigmaPower).toBe(0);
    const trained = LsaModel.train(texts, { dimensions: 8, seed: 7, sigmaPower: 0 });
    const a = p0.embed(texts[2]!);
    const b = trained.embed(texts[2]!);
    for (let i = 0; i < a.length; i++) expect(a[i]!).toBeCloseTo(b[i]!, 5);
  });

  it('embeds a text with no known term as the zero vector', () => {
    expect([...model.embed('zzzz qqqq')].every((x) => x === 0)).toBe(true);
    expect([...model.embed('')].every((x) => x === 0)).toBe(true);
  });

  it('handles a corpus smaller than k and an empty vocabulary', () => {
    const tiny = LsaModel.train(['alpha beta', 'alpha gamma', 'beta gamma'], {
      dimensions: 64,
      minDf: 1,
      maxDfRatio: 1,
    });
    expect(tiny.dimension).toBeLessThanOrEqual(3);
    expect(tiny.dimension).toBeGreaterThan(0);
    const empty = LsaModel.train(['one', 'two'], { dimensions: 4 }); // no term reaches minDf 2
    expect(empty.dimension).toBe(0);
    expect(empty.embed('one').length).toBe(0);
    expect(LsaModel.deserialize(empty.serialize()).dimension).toBe(0);
  });

  it('rejects bad options and corrupt bytes with QuarryError', () => {
    expect(() => LsaModel.train(texts, { dimensions: 0 })).toThrow(/dimensions/);
    expect(() => LsaModel.train(texts, { maxDfRatio: 2 })).toThrow(/maxDfRatio/);
    const bytes = model.serialize();
    for (const bad of [
      bytes.slice(0, 20),
      bytes.slice(0, bytes.length - 4),
      Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    ]) {
      let err: unknown;
      try {
        LsaModel.deserialize(bad);
      } catch (e) {
        err = e;
      }
      expect(isQuarryError(err)).toBe(true);
    }
  });
});

import { describe, expect, it } from 'vitest';
import {
  forEachNgramHash,
  HashedNgramModel,
  resolveHashedNgramOptions,
} from '../../../src/embed/local/hashed-ngrams.js';
import { isQuarryError } from '../../../src/errors.js';
import { TOPIC_CORPUS } from './corpus.js';

const cos = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
const texts = TOPIC_CORPUS.map((d) => d.text);

describe('HashedNgramModel', () => {
  const model = HashedNgramModel.train(texts);

  it('produces unit vectors of the configured dimension', () => {
    const v = model.embed('retrieval augmented generation');
    expect(v.length).toBe(1024);
    expect(cos(v, v)).toBeCloseTo(1, 5);
    expect([...model.embed('')].every((x) => x === 0)).toBe(true);
    expect(HashedNgramModel.train(texts, { dimension: 256 }).embed('x y z').length).toBe(256);
  });

  it('tolerates typos and inflection', () => {
    const typo = cos(model.embed('retrieval'), model.embed('retreival'));
    const inflected = cos(model.embed('retrieval'), model.embed('retrieving'));
    const unrelated = cos(model.embed('retrieval'), model.embed('astronomy'));
    expect(typo).toBeGreaterThan(0.3);
    expect(inflected).toBeGreaterThan(0.5);
    expect(Math.abs(unrelated)).toBeLessThan(0.1);
    // In a sentence, two typos still leave the query far closer to its source than to other text.
    const q = model.embed('informaton retreival systems');
    expect(cos(q, model.embed('information retrieval systems'))).toBeGreaterThan(0.5);
    expect(cos(q, model.embed('cooking with garlic and butter'))).toBeLessThan(0.1);
  });

  it('weights rare n-grams above common ones (idf learned from the corpus)', () => {
    // "garlic" occurs in several cooking documents, "quasar" in one: a query sharing only the rare word is closer.
    const doc = model.embed('garlic quasar');
    expect(cos(model.embed('quasar'), doc)).toBeGreaterThan(cos(model.embed('garlic'), doc));
  });

  it('ranks documents of the query topic first', () => {
    const q = model.embed('telescopes observing galaxies');
    const ranked = TOPIC_CORPUS.map((d, i) => ({ topic: d.topic, c: cos(q, model.embed(texts[i]!)) })).sort(
      (a, b) => b.c - a.c,
    );
    expect(ranked[0]!.topic).toBe('astronomy');
  });

  it('emits every 3–5-gram of every bracketed non-stop-word', () => {
    const opts = resolveHashedNgramOptions({});
    const hashes: number[] = [];
    forEachNgramHash("The cat's <retrieval> ok a", opts, (h) => hashes.push(h));
    // "the"/"a" are stop-words; <cat's> has 7 chars (5+4+3 n-grams), <retrieval> 11 (9+8+7), <ok> 4 (2+1).
    expect(hashes.length).toBe(5 + 4 + 3 + (9 + 8 + 7) + (2 + 1));
    expect(new Set(hashes).size).toBe(hashes.length);
    const withStop: number[] = [];
    forEachNgramHash('a', resolveHashedNgramOptions({ skipStopwords: false }), (h) => withStop.push(h));
    expect(withStop.length).toBe(1); // "<a>" is shorter than minN: its whole form
  });

  it('is deterministic and round-trips through bytes', () => {
    const again = HashedNgramModel.train(texts);
    expect(again.hash).toBe(model.hash);
    const back = HashedNgramModel.deserialize(model.serialize());
    expect(back.options).toEqual(model.options);
    for (const t of ['galaxy', texts[0]!, 'zzz']) expect([...back.embed(t)]).toEqual([...model.embed(t)]);
    expect(HashedNgramModel.train(texts, { seed: 1 }).hash).not.toBe(model.hash);
  });

  it('rejects bad options and corrupt bytes', () => {
    expect(() => HashedNgramModel.train(texts, { minN: 4, maxN: 3 })).toThrow(/minN/);
    expect(() => HashedNgramModel.train(texts, { dimension: 3 })).toThrow(/dimension/);
    const bytes = model.serialize();
    let err: unknown;
    try {
      HashedNgramModel.deserialize(bytes.slice(0, 100));
    } catch (e) {
      err = e;
    }
    expect(isQuarryError(err)).toBe(true);
  });
});

describe('HashedNgramModel scratch table', () => {
  it('gives the same vector for a text before and after a much longer text', () => {
    const model = HashedNgramModel.train(texts);
    const short = 'telescope galaxy';
    const before = model.embed(short);
    // Far more distinct n-grams than the initial table holds (forces growth past the kept size).
    const long = Array.from({ length: 40_000 }, (_, i) => `w${i.toString(36)}x`).join(' ');
    const l1 = model.embed(long);
    expect([...model.embed(short)]).toEqual([...before]);
    expect([...model.embed(long)]).toEqual([...l1]);
    expect([...model.embed(short)]).toEqual([...before]);
  });
});

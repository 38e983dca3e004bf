import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalEmbedder } from '../../../src/embed/local/local-embedder.js';
import type { Embedder } from '../../../src/embed/types.js';
import { loadBeirDataset, readCorpus } from '../../../src/eval/beir.js';
import { evaluateRun, type Run } from '../../../src/eval/metrics.js';
import { TOPIC_CORPUS } from './corpus.js';

const cos = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
const texts = TOPIC_CORPUS.map((d) => d.text);

describe('LocalEmbedder', () => {
  const embedder = LocalEmbedder.train(texts, { lsa: { dimensions: 8 } });

  it('implements the Embedder contract with a model id that names the trained state', async () => {
    const e: Embedder = embedder;
    expect(e.id).toMatch(/^local-lsa\+ng:k8\+d1024:[0-9a-f]{12}$/);
    expect(e.dimension).toBe(8 + 1024);
    const [q, d] = await e.embed(['garlic sauce', 'garlic sauce'], { kind: 'query' });
    expect(q!.length).toBe(e.dimension);
    expect(cos(q!, q!)).toBeCloseTo(1, 5);
    expect([...(await e.embed(['garlic sauce'], { kind: 'document' }))[0]!]).toEqual([...d!]);
    expect([...embedder.embedSync('garlic sauce')]).toEqual([...q!]);
    expect(await e.embed([])).toEqual([]);
  });

  it('mixes the two cosines by ngramWeight', () => {
    const w = embedder.ngramWeight;
    const a = texts[0]!;
    const b = texts[3]!;
    const expected =
      (1 - w) * cos(embedder.lsa.embed(a), embedder.lsa.embed(b)) +
      w * cos(embedder.ngrams!.embed(a), embedder.ngrams!.embed(b));
    expect(cos(embedder.embedSync(a), embedder.embedSync(b))).toBeCloseTo(expected, 5);
  });

  it('LSA only when ngramWeight is 0', () => {
    const lsaOnly = LocalEmbedder.train(texts, { lsa: { dimensions: 8 }, ngramWeight: 0 });
    expect(lsaOnly.id).toMatch(/^local-lsa:k8:[0-9a-f]{12}$/);
    expect(lsaOnly.dimension).toBe(8);
    expect(lsaOnly.ngrams).toBeUndefined();
    expect(() => LocalEmbedder.train(texts, { ngramWeight: 1.5 })).toThrow(/ngramWeight/);
  });

  it('keeps a unit vector when only one part knows the text', () => {
    const v = embedder.embedSync('zzyzx qwerty'); // no LSA term, but n-grams
    expect(cos(v, v)).toBeCloseTo(1, 5);
    expect([...v.subarray(0, 8)].every((x) => x === 0)).toBe(true);
  });

  it('groups documents by topic', () => {
    const vecs = texts.map((t) => embedder.embedSync(t));
    let same = 0;
    let other = 0;
    let sn = 0;
    let on = 0;
    for (let i = 0; i < vecs.length; i++) {
      for (let j = i + 1; j < vecs.length; j++) {
        const c = cos(vecs[i]!, vecs[j]!);
        if (TOPIC_CORPUS[i]!.topic === TOPIC_CORPUS[j]!.topic) {
          same += c;
          sn++;
        } else {
          other += c;
          on++;
        }
      }
    }
    expect(same / sn).toBeGreaterThan(other / on + 0.1);
  });

  it('is deterministic, and a retrained model gets a different id', () => {
    const again = LocalEmbedder.train(texts, { lsa: { dimensions: 8 } });
    expect(again.id).toBe(embedder.id);
    expect([...again.embedSync(texts[5]!)]).toEqual([...embedder.embedSync(texts[5]!)]);
    const retrained = LocalEmbedder.train([...texts, 'a new document about galaxies and telescopes'], {
      lsa: { dimensions: 8 },
    });
    expect(retrained.id).not.toBe(embedder.id);
  });

  it('round-trips through bytes with the same id and vectors', () => {
    const back = LocalEmbedder.deserialize(embedder.serialize());
    expect(back.id).toBe(embedder.id);
    expect(back.dimension).toBe(embedder.dimension);
    expect(back.ngramWeight).toBe(embedder.ngramWeight);
    for (const t of ['telescope', texts[7]!, ''])
      expect([...back.embedSync(t)]).toEqual([...embedder.embedSync(t)]);
    const lsaOnly = LocalEmbedder.train(texts, { lsa: { dimensions: 4 }, ngramWeight: 0 });
    expect(LocalEmbedder.deserialize(lsaOnly.serialize()).id).toBe(lsaOnly.id);
    expect(() => LocalEmbedder.deserialize(embedder.serialize().slice(0, 64))).toThrow(/not a valid/);
  });
});

const scifact = path.resolve(import.meta.dirname, '../../../../shared/datasets/scifact');
const hasScifact = fs.existsSync(path.join(scifact, 'corpus.jsonl'));
if (!hasScifact) console.warn(`skipping the scifact dense test: ${scifact} not found`);

describe('LocalEmbedder on scifact (real data)', () => {
  it.skipIf(!hasScifact)('dense retrieval alone reaches nDCG@10 > 0.4 on the test split', async () => {
    const ds = await loadBeirDataset(scifact, 'test');
    const ids: string[] = [];
    const docTexts: string[] = [];
    for await (const d of readCorpus(ds.corpusPath)) {
      ids.push(d.id);
      docTexts.push(`${d.title} ${d.text}`);
    }
    const embedder = LocalEmbedder.train(docTexts); // the defaults
    const dim = embedder.dimension;
    const matrix = new Float32Array(ids.length * dim);
    docTexts.forEach((t, i) => {
      matrix.set(embedder.embedSync(t), i * dim);
    });
    const run: Run = new Map();
    const scores = new Float32Array(ids.length);
    for (const q of ds.queries) {
      const v = embedder.embedSync(q.text);
      for (let i = 0; i < ids.length; i++) {
        let s = 0;
        const o = i * dim;
        for (let c = 0; c < dim; c++) s += v[c]! * matrix[o + c]!;
        scores[i] = s;
      }
      const cutoff = [...scores].sort((a, b) => b - a)[99]!;
      const top: { docId: string; score: number }[] = [];
      scores.forEach((s, i) => {
        if (s >= cutoff) top.push({ docId: ids[i]!, score: s });
      });
      run.set(q.id, top);
    }
    const { mean } = evaluateRun(ds.qrels, run, ['ndcg@10']);
    expect(mean['ndcg@10']).toBeGreaterThan(0.4);
  });
});

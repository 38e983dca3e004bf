import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyFreshness } from '../../src/fuse/freshness.js';
import { Quarry } from '../../src/pipeline/quarry.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function versionedStore(): Promise<Quarry> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-fresh-'));
  dirs.push(dir);
  const records = [
    // Three versions of the same guide (same slug), and an unrelated, older but more relevant page.
    {
      _id: 'guide-v1',
      title: 'Rotation guide v1',
      text: 'Rotate the signing keys every year.',
      metadata: { slug: 'rotation', updated_at: '2022-01-10' },
    },
    {
      _id: 'guide-v2',
      title: 'Rotation guide v2',
      text: 'Rotate the signing keys every quarter.',
      metadata: { slug: 'rotation', updated_at: '2024-03-01' },
    },
    {
      _id: 'guide-v3',
      title: 'Rotation guide v3',
      text: 'Rotate the signing keys every month.',
      metadata: { slug: 'rotation', updated_at: '2025-06-01' },
    },
    {
      _id: 'faq-old',
      title: 'Keys FAQ',
      text: 'Signing keys: rotate signing keys, store signing keys safely. Keys keys keys.',
      metadata: { updated_at: '2015-01-01' },
    },
  ];
  fs.writeFileSync(path.join(dir, 'docs.jsonl'), records.map((r) => JSON.stringify(r)).join('\n'));
  const q = Quarry.open({ store: path.join(dir, 'store') });
  await q.ingest([path.join(dir, 'docs.jsonl')]);
  return q;
}

describe('freshness', () => {
  it('returns only the newest version of each document when asked', async () => {
    const q = await versionedStore();
    const all = await q.search('rotate signing keys', { k: 10 });
    expect(all.hits.map((h) => h.chunk.docId).sort()).toEqual([
      'faq-old',
      'guide-v1',
      'guide-v2',
      'guide-v3',
    ]);
    const latest = await q.search('rotate signing keys', {
      k: 10,
      freshness: { latestBy: 'slug' },
      trace: true,
    });
    expect(latest.hits.map((h) => h.chunk.docId).sort()).toEqual(['faq-old', 'guide-v3']);
    const stage = latest.trace!.stages.find((s) => s.stage === 'freshness')!;
    expect((stage.detail.superseded as number[]).length).toBe(2);
    q.close();
  });

  it('time decay moves recent documents up, scaled by the half-life', async () => {
    const q = await versionedStore();
    const plain = await q.search('rotate signing keys', { k: 4 });
    expect(plain.hits[0]!.chunk.docId).not.toBe('guide-v3');
    const now = Date.parse('2025-07-01');
    const decayed = await q.search('rotate signing keys', {
      k: 4,
      freshness: { halfLifeDays: 90, decayWeight: 0.9, now },
    });
    expect(decayed.hits[0]!.chunk.docId).toBe('guide-v3');
    // A ten-year-old page keeps only the undecayed 10 % of its score.
    const faqPlain = plain.hits.find((h) => h.chunk.docId === 'faq-old')!.score;
    const faqDecayed = decayed.hits.find((h) => h.chunk.docId === 'faq-old')!.score;
    expect(faqDecayed / faqPlain).toBeCloseTo(0.1, 4);
    q.close();
  });

  it('computes the decay factor exactly', () => {
    const day = 86_400_000;
    const doc = (t: string) => ({ updated_at: t }) as never;
    const out = applyFreshness(
      [
        { chunkId: 1, group: 1, score: 10 },
        { chunkId: 2, group: 2, score: 10 },
      ],
      (g) => (g === 1 ? doc('2025-01-01T00:00:00Z') : doc('2024-12-02T00:00:00Z')),
      { halfLifeDays: 30, decayWeight: 0.5, now: Date.parse('2025-01-01T00:00:00Z') + 0 * day },
    );
    // chunk 2 is 30 days old: factor = 0.5 + 0.5·0.5 = 0.75
    expect(out.ranked.map((r) => [r.chunkId, r.score])).toEqual([
      [1, 10],
      [2, 7.5],
    ]);
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Quarry } from '../../src/pipeline/quarry.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-exact-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const QUERY = 'policy for "signing key rotation"';

describe('exact-match entities', () => {
  it('routes quoted phrases and codes to exact matching, ahead of pages that only repeat the words', async () => {
    const topics = [
      'audit logging retention',
      'backup snapshot restore',
      'network firewall ingress',
      'billing invoice tax',
      'search index shards',
      'email delivery bounce',
    ];
    const records = [
      ...Array.from({ length: 30 }, (_, i) => ({
        _id: `topic-${i}`,
        title: topics[i % 6]!,
        text: `Notes on ${topics[i % 6]} and ${topics[(i + 1) % 6]}: procedures, owners and reviews.`,
      })),
      ...Array.from({ length: 30 }, (_, i) => ({
        _id: `words-${i}`,
        title: 'Keys',
        text: `Rotation of the signing service; key policy; rotation of keys, signing, key rotation policy ${i}.`,
      })),
      {
        _id: 'phrase',
        title: 'Security handbook',
        text: 'Our signing key rotation happens every 90 days under the security policy.',
      },
      {
        _id: 'codes',
        title: 'Error reference',
        text: 'ERR_UPSTREAM_4412 is raised when the gateway gives up on a request.',
      },
    ];
    fs.writeFileSync(path.join(dir, 'kb.jsonl'), records.map((r) => JSON.stringify(r)).join('\n'));
    const q = Quarry.open({ store: path.join(dir, 'store') });
    await q.ingest([path.join(dir, 'kb.jsonl')]);

    // Switched off, bag-of-words BM25 prefers the pages that repeat the words.
    const off = Quarry.open({ store: path.join(dir, 'store'), config: { query: { entities: false } } });
    const plain = await off.search(QUERY, { k: 5 });
    expect(plain.hits[0]!.chunk.docId).not.toBe('phrase');
    off.close();

    const r = await q.search(QUERY, { k: 5, trace: true });
    expect(r.hits[0]!.chunk.docId).toBe('phrase');
    const stage = r.trace!.stages.find((s) => s.stage === 'retrieve.exact')!;
    expect(stage.detail.entities).toEqual([{ kind: 'quoted', text: 'signing key rotation', exact: true }]);
    expect((stage.detail.candidates as Array<{ chunkId: number }>).length).toBe(1);

    // Hybrid fuses the exact list as a third source.
    const h = await q.search(QUERY, { k: 5, retriever: 'hybrid' });
    expect(h.hits[0]!.chunk.docId).toBe('phrase');
    expect(Object.keys(h.hits[0]!.scores)).toContain('exact');

    // Error codes are single tokens (UAX #29 joins underscores) and found exactly.
    expect((await q.search('why ERR_UPSTREAM_4412?', { k: 1 })).hits[0]!.chunk.docId).toBe('codes');
    q.close();
  });
});

/**
 * `quarry feedback export`: votes recorded by the CLI and through the library (with a server query id) come
 * out as train-ranker feedback lines and candidate items of the eval golden-set format; votes on deleted documents are left out and
 * counted; PII typed into a query is not exported (nor stored) as typed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TRUSTED_LOCAL } from '../../src/access/principal.js';
import { loadGoldenSet } from '../../src/eval/golden.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { readFeedback } from '../../src/rerank/ltr/train.js';
import { runCli } from '../cli/run-cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-fbx-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('quarry feedback export', () => {
  it('exports votes and golden candidates, skips deleted documents, keeps query ids, never raw PII', async () => {
    const store = path.join(tmp, 'store');
    const config = path.join(tmp, 'config.json');
    fs.writeFileSync(config, JSON.stringify({ privacy: { enabled: true, mode: 'mask' } }));
    const q = Quarry.open({ store, config: JSON.parse(fs.readFileSync(config, 'utf8')) });
    await q.addDocuments([
      { id: 'refunds', text: 'Refunds are paid to the original card within five days.' },
      { id: 'ferry', text: 'The ferry leaves at seven.' },
      { id: 'old', text: 'An old notice about refunds by cheque.' },
    ]);
    q.recordFeedback(
      { query: 'refund card', docId: 'refunds', helpful: true, queryId: 'q-123' },
      { principal: TRUSTED_LOCAL },
    );
    q.recordFeedback({ query: 'refund card', docId: 'ferry', helpful: false }, { principal: TRUSTED_LOCAL });
    q.recordFeedback({ query: 'refund card', docId: 'old', helpful: true }, { principal: TRUSTED_LOCAL });
    q.close();
    const cli = await runCli([
      'feedback',
      'refunds for jane.doe@example.com',
      '--doc',
      'refunds',
      '--helpful',
      '--store',
      store,
      '--config',
      config,
    ]);
    expect(cli.code).toBe(0);
    const del = await runCli(['delete', 'old', '--store', store, '--config', config]);
    expect(del.code).toBe(0);

    const out = path.join(tmp, 'votes.jsonl');
    const golden = path.join(tmp, 'golden.jsonl');
    const r = await runCli([
      'feedback',
      'export',
      '--store',
      store,
      '--config',
      config,
      '--out',
      out,
      '--golden',
      golden,
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /exported 3 vote\(s\), 2 candidate golden item\(s\); 1 vote\(s\) on deleted documents left out/,
    );
    const lines = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({
      query: 'refund card',
      docId: 'refunds',
      helpful: true,
      queryId: 'q-123',
    });
    expect(lines.map((l) => l.docId)).toEqual(['refunds', 'ferry', 'refunds']);
    expect(fs.readFileSync(out, 'utf8')).not.toContain('jane.doe@example.com');
    // The votes are what train-ranker reads.
    expect(readFeedback(out).get('refund card')).toEqual(
      new Map([
        ['refunds', 1],
        ['ferry', 0],
      ]),
    );
    // Golden candidates are golden-set items `quarry eval` loads: the helpful documents as expected sources.
    const g = await loadGoldenSet(golden);
    const refund = g.items.find((it) => it.question === 'refund card');
    expect(refund).toMatchObject({ sources: ['refunds'], answerable: true, draft: true, tags: ['feedback'] });
    expect(fs.readFileSync(golden, 'utf8')).toContain('"draft":true');
    // Nor is the raw address in the store itself.
    const reopened = Quarry.open({ store, config: JSON.parse(fs.readFileSync(config, 'utf8')) });
    expect(JSON.stringify(reopened.store.listFeedback())).not.toContain('jane.doe@example.com');
    reopened.close();
  });
});

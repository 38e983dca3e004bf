/**
 * Query understanding never rewrites silently, through the public API on a real store: typo correction
 * leaves valid words alone and reports what it changed, a quoted plain word ranks instead of forcing
 * promotion, and the trace says which fusion weights were applied and why.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Quarry } from '../../src/pipeline/quarry.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-understanding-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const samples = path.resolve(import.meta.dirname, '../../samples/docs');

describe('typo correction on a real store', () => {
  const store = path.join(dir, 'printers');
  beforeAll(async () => {
    const records = [
      { _id: 'printer', title: 'Printer setup', text: 'Install the printer driver, then print a test page.' },
      { _id: 'defaults', title: 'Defaults', text: 'The default tray holds plain paper; change the default.' },
      { _id: 'jam', title: 'Paper jams', text: 'Open the printer cover and remove the jammed paper.' },
    ];
    fs.writeFileSync(path.join(dir, 'printers.jsonl'), records.map((r) => JSON.stringify(r)).join('\n'));
    const q = Quarry.open({ store });
    await q.ingest([path.join(dir, 'printers.jsonl')]);
    q.close();
  });

  it('searches a valid English word the corpus lacks as written', async () => {
    const q = Quarry.open({ store });
    const r = await q.search('pointer', { trace: true });
    // "pointer" is one edit from the indexed "printer", but it is a word: nothing is rewritten.
    expect(r.rewrite).toBeUndefined();
    expect(r.hits).toEqual([]);
    const analyze = r.trace!.stages.find((s) => s.stage === 'query.analyze')!.detail;
    expect(analyze.corrections).toEqual([]);
    q.close();
  });

  it('corrects a misspelling, says what was searched instead, and searches the original on request', async () => {
    const q = Quarry.open({ store });
    const r = await q.search('defualt tray');
    expect(r.rewrite).toEqual({
      original: 'defualt tray',
      searched: 'default tray',
      corrections: [{ from: 'defualt', to: 'default' }],
    });
    expect(r.hits[0]!.chunk.docId).toBe('defaults');
    // `typos: false`: the words as written (and not served from the corrected result's cache entry).
    const asWritten = await q.search('defualt tray', { typos: false });
    expect(asWritten.rewrite).toBeUndefined();
    expect(asWritten.hits[0]!.chunk.docId).toBe('defaults'); // "tray" alone still matches
    expect((await q.search('defualt', { typos: false })).hits).toEqual([]);
    expect((await q.search('defualt')).hits.map((h) => h.chunk.docId)).toEqual(['defaults']);
    q.close();
  });
});

describe('quoted words', () => {
  const store = path.join(dir, 'quoted');
  beforeAll(async () => {
    const records = [
      // Many pages merely mention the quoted word.
      ...Array.from({ length: 12 }, (_, i) => ({
        _id: `mention-${i}`,
        title: `Release notes ${i}`,
        text: `Release ${i} changes the float rounding of totals in reports.`,
      })),
      {
        _id: 'answer',
        title: 'Exchange rates',
        text: 'When governments let currencies float, exchange rates rise and fall with market demand for each currency.',
      },
      {
        _id: 'api',
        title: 'API',
        text: 'Call getUserById with the account id; governments and currencies are not involved.',
      },
    ];
    fs.writeFileSync(path.join(dir, 'quoted.jsonl'), records.map((r) => JSON.stringify(r)).join('\n'));
    const q = Quarry.open({ store });
    await q.ingest([path.join(dir, 'quoted.jsonl')]);
    q.close();
  });

  it('lets a single quoted word boost within the ranking instead of forcing its documents first', async () => {
    const q = Quarry.open({ store });
    const query =
      'what happens to exchange rates when governments let currencies "float" with market demand?';
    const r = await q.search(query, { k: 5, trace: true });
    expect(r.hits[0]!.chunk.docId).toBe('answer');
    const stages = r.trace!.stages.map((s) => s.stage);
    expect(stages).not.toContain('retrieve.exact');
    const analyze = r.trace!.stages.find((s) => s.stage === 'query.analyze')!.detail;
    expect(analyze.entities).toEqual([{ kind: 'quoted', text: 'float', exact: false, boost: 2 }]);
    // The boost counts: the quoted word weighs twice in BM25, so a page mentioning it gains on the answer.
    const plain = await q.search(query.replace(/"/g, ''), { k: 20 });
    const boosted = await q.search(query, { k: 20 });
    const gap = (hits: typeof r.hits): number =>
      hits.find((h) => h.chunk.docId.startsWith('mention'))!.score / hits[0]!.score;
    expect(plain.hits[0]!.chunk.docId).toBe('answer');
    expect(gap(boosted.hits)).toBeGreaterThan(gap(plain.hits));
    q.close();
  });

  it('still promotes a quoted identifier verbatim above the ranking', async () => {
    const q = Quarry.open({ store });
    const r = await q.search(
      'what happens to exchange rates when governments let currencies use "getUserById"?',
      {
        k: 5,
        trace: true,
      },
    );
    expect(r.hits[0]!.chunk.docId).toBe('api');
    expect(r.trace!.stages.map((s) => s.stage)).toContain('retrieve.exact');
    q.close();
  });
});

describe('fusion weights in the trace', () => {
  it('shows the weights fusion applied, where they came from, and what the intent suggested', async () => {
    const store = path.join(dir, 'samples');
    const q = Quarry.open({ store });
    await q.ingest([samples]);
    const query = 'what is the default chunk size';
    const r = await q.search(query, { retriever: 'hybrid', trace: true });
    const fuse = r.trace!.stages.find((s) => s.stage === 'fuse')!.detail;
    expect(fuse.weights).toMatchObject({
      applied: { bm25: 0.6, dense: 0.4 },
      source: 'config',
      intent: 'factual',
      suggested: { bm25: 0.75, dense: 0.25 },
    });
    const analyze = r.trace!.stages.find((s) => s.stage === 'query.analyze')!.detail;
    expect(analyze.intent).toMatchObject({
      intent: 'factual',
      suggested: { weights: { bm25: 0.75, dense: 0.25 }, k: 10 },
      applied: false,
    });
    expect(analyze.intent).not.toHaveProperty('weights');
    q.close();

    const routed = Quarry.open({ store, config: { retrieval: { intentWeights: true } } });
    const rr = await routed.search(query, { retriever: 'hybrid', trace: true });
    expect(rr.trace!.stages.find((s) => s.stage === 'fuse')!.detail.weights).toMatchObject({
      applied: { bm25: 0.75, dense: 0.25 },
      source: 'intent',
      intent: 'factual',
    });
    expect(rr.trace!.stages.find((s) => s.stage === 'query.analyze')!.detail.intent).toMatchObject({
      applied: true,
    });
    routed.close();
  });
});

/**
 * Recorded eval runs (`quarry eval --record`): the real CLI records each run into a store's eval.db, newest
 * first, with per-query metrics and traces of the worst queries; a store that never recorded a run reads as
 * empty without a file being created; unknown ids are NOT_FOUND.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EVAL_DB, EvalRuns } from '../../src/eval/runs.js';
import { runCli } from '../cli/run-cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-runs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function dataset(): string {
  const dir = path.join(tmp, 'set');
  fs.mkdirSync(path.join(dir, 'qrels'), { recursive: true });
  const docs = [
    ['d1', 'Tidal power stations turn the rise and fall of the sea into electricity.'],
    ['d2', 'Peat bogs store more carbon per hectare than forests do.'],
    ['d3', 'Basking sharks feed on plankton near the surface in summer.'],
  ];
  fs.writeFileSync(
    path.join(dir, 'corpus.jsonl'),
    docs.map(([id, text]) => JSON.stringify({ _id: id, title: '', text })).join('\n'),
  );
  const queries = [
    ['q1', 'tidal electricity'],
    ['q2', 'carbon in peat bogs'],
    ['q3', 'what do sharks eat'],
    ['q4', 'forests and plankton'],
  ];
  fs.writeFileSync(
    path.join(dir, 'queries.jsonl'),
    queries.map(([id, text]) => JSON.stringify({ _id: id, text })).join('\n'),
  );
  fs.writeFileSync(
    path.join(dir, 'qrels/test.tsv'),
    'query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\nq4\td1\t1\n',
  );
  return dir;
}

describe('quarry eval --record', () => {
  it('records each run newest first, with worst queries traced, readable by the dashboard API', async () => {
    const set = dataset();
    const store = path.join(tmp, 'served');
    for (const label of ['first', 'second']) {
      const r = await runCli(['eval', set, '--record', store, '--label', label, '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout);
      expect(report.recorded).toEqual({ store: path.resolve(store), runId: expect.any(String) });
    }
    const runs = EvalRuns.open(store, { readonly: true });
    try {
      const list = runs.list();
      expect(list.map((x) => x.label)).toEqual(['second', 'first']);
      expect(list[0]).toMatchObject({ queries: 4, retriever: 'bm25' });
      const run = runs.get(list[0]!.id, { worst: 4 });
      expect(run.latencies_ms).toHaveLength(4);
      // q4 is judged against d1, which its words do not match: it is the worst query, and traced.
      expect(run.worst[0]).toMatchObject({ queryId: 'q4', hasTrace: true });
      expect(run.worst[0]!.metrics['ndcg@10']).toBeLessThan(1);
      const t = runs.trace(list[0]!.id, 'q4');
      expect(t.trace.stages.map((s) => s.stage)).toContain('retrieve.bm25');
      expect(() => runs.get('nope')).toThrow(/no eval run with id "nope"/);
      expect(() => runs.trace(list[0]!.id, 'q999')).toThrow(/no trace kept/);
    } finally {
      runs.close();
    }
  });

  it('with --answers, the worst answers the report lists keep an ask trace too', async () => {
    const set = path.join(tmp, 'set');
    const store = path.join(tmp, 'answers');
    const r = await runCli(['eval', set, '--answers', '--record', store, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    const worst: Array<{ id: string }> = report.answers.worst;
    expect(worst.length).toBeGreaterThan(0);
    const runs = EvalRuns.open(store, { readonly: true });
    try {
      for (const w of worst) {
        const t = runs.trace(report.recorded.runId, w.id);
        expect(t.trace.stages.map((s) => s.stage)).toContain('answer.extractive');
      }
    } finally {
      runs.close();
    }
  });

  it('a store that never recorded a run reads as empty, and no file appears', () => {
    const store = path.join(tmp, 'empty');
    fs.mkdirSync(store);
    const runs = EvalRuns.open(store, { readonly: true });
    expect(runs.list()).toEqual([]);
    runs.close();
    expect(fs.existsSync(path.join(store, EVAL_DB))).toBe(false);
  });
});

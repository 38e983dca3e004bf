/**
 * `quarry eval` on golden sets through the real command line: `--generate` drafts a set from a corpus,
 * `eval <set> --corpus <dir>` reports answer metrics (text and --json), and a set that fails validation
 * exits with the dataset error code naming the line and field.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

const fixtures = path.resolve(import.meta.dirname, '../eval/fixtures');
const corpus = path.join(fixtures, 'islay');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-cli-golden-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('quarry eval with golden sets', () => {
  it('reports answer metrics for a golden set', async () => {
    const golden = path.join(fixtures, 'islay-golden.jsonl');
    const text = await runCli(['eval', golden, '--corpus', corpus]);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/islay-golden \(golden\): 6 queries/);
    expect(text.stdout).toMatch(/answers \(extractive\): 6 questions, 3 abstained, answer_hit@1 1\.0000/);
    expect(text.stdout).toMatch(/abstention_correct_unanswerable 1\.0000/);
    const json = await runCli(['eval', golden, '--corpus', corpus, '--json']);
    const report = JSON.parse(json.stdout);
    expect(report.version).toBe(1);
    expect(report.metrics).toMatchObject({ abstention_correct: 1, citation_recall: 1, faithfulness: 1 });
    expect(report.golden.items).toBe(6);
  });

  it('drafts a golden set with --generate, and evaluates it', async () => {
    const out = path.join(tmp, 'drafts.jsonl');
    const gen = await runCli(['eval', '--generate', corpus, '--out', out, '--count', '4']);
    expect(gen.code).toBe(0);
    expect(gen.stdout).toMatch(/drafted 4 questions \(rule-based\)/);
    const lines = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(4);
    expect(lines.every((l) => l.draft === true)).toBe(true);
    const ev = await runCli(['eval', out, '--corpus', corpus, '--json']);
    expect(ev.code).toBe(0);
    const report = JSON.parse(ev.stdout);
    expect(report.golden).toMatchObject({ items: 4, drafts: 4 });
    // Cloze questions hold nearly all of their sentence: the answer quotes it, from the right document.
    expect(report.metrics.citation_recall).toBe(1);
    expect(report.metrics['answer_hit@1']).toBeGreaterThanOrEqual(0.75);
  });

  it('exits with the dataset error naming the line and field of an invalid item', async () => {
    const bad = path.join(tmp, 'bad.jsonl');
    fs.writeFileSync(
      bad,
      `${JSON.stringify({ question: 'ok?' })}\n${JSON.stringify({ question: 'x?', sources: 'ferry.md' })}\n`,
    );
    const r = await runCli(['eval', bad, '--corpus', corpus]);
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/bad\.jsonl:2: field "sources"/);
    const none = await runCli(['eval', path.join(fixtures, 'islay-golden.jsonl')]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/pass --corpus/);
  });
});

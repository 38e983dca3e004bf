/**
 * Memory per ingest follows the largest file, not `concurrency` × files or `batchSize` × documents: files are
 * admitted to parsing and chunking while their total size stays under `ingest.maxInFlightBytes` (a larger one
 * runs alone), and a batch is written once its documents hold `ingest.batchMaxChars` characters.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pool } from '../../src/ingest/runner.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { makeTempDir } from './fixtures.js';

const words = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => `w${(i * 7919 + seed) % 5003} sentence${i % 97}.`).join(' ');

describe('ingest memory bounds', () => {
  let dir: string;
  const files: string[] = [];
  beforeAll(() => {
    dir = makeTempDir();
    fs.mkdirSync(path.join(dir, 'docs'));
    // Six text files of about 300 kB each.
    for (let i = 0; i < 6; i++) {
      const f = path.join(dir, 'docs', `big-${i}.txt`);
      fs.writeFileSync(f, words(20_000, i));
      files.push(f);
    }
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('admits files while their bytes fit maxInFlightBytes; a file larger than it runs alone', async () => {
    const size = fs.statSync(files[0]!).size;
    const tasks = files.map((abs) => ({ abs, source: path.basename(abs) }));
    const observe = async (limit: number, maxBytes: number) => {
      let inFlight = 0;
      let peak = 0;
      const order: string[] = [];
      await pool(tasks, limit, maxBytes, async (t) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        order.push(t.source);
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
      });
      return { peak, order };
    };
    expect((await observe(4, 1e12)).peak).toBe(4); // bytes do not bind: concurrency does
    expect((await observe(4, size * 2.5)).peak).toBe(2); // two fit, a third would not
    const alone = await observe(4, size / 2); // each file is over the budget: one at a time, all of them
    expect(alone.peak).toBe(1);
    expect(alone.order).toEqual(tasks.map((t) => t.source));
    expect((await observe(4, 1e12)).order).toHaveLength(6);
  });

  it('writes a batch once its documents hold batchMaxChars characters', async () => {
    const size = fs.statSync(files[0]!).size;
    const q = Quarry.open({
      store: path.join(dir, 'store'),
      config: { ingest: { batchMaxChars: Math.floor(size * 1.5), concurrency: 1 } },
    });
    try {
      const report = await q.ingest([path.join(dir, 'docs')]);
      expect(report.added).toBe(6);
      // Two documents per batch (the second passes 1.5 files' worth), so three commits instead of one.
      expect(q.stats().indexVersion).toBe(3);
    } finally {
      q.close();
    }
  });
});

/**
 * Ingest progress counts records and chunks, not files: one large JSONL file reports as it goes, on a real
 * store in a temporary directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { IngestProgress } from '../../src/ingest/ingest.js';
import { Quarry } from '../../src/pipeline/quarry.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-progress-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('ingest progress', () => {
  it('one JSONL file of 2,000 records reports records and chunks while it runs, ending at the totals', async () => {
    const file = path.join(tmp, 'records.jsonl');
    const n = 2000;
    fs.writeFileSync(
      file,
      Array.from({ length: n }, (_, i) =>
        JSON.stringify({ id: `r${i}`, title: `Record ${i}`, text: `Record ${i} is about topic ${i % 17}.` }),
      ).join('\n'),
    );
    const q = Quarry.open({ store: path.join(tmp, 'store'), config: { ingest: { batchSize: 64 } } });
    const events: IngestProgress[] = [];
    try {
      const report = await q.ingest([file, 'samples/docs/chunking.md'], {
        onProgress: (p) => events.push({ ...p }),
      });
      expect(report.added).toBe(n + 1);
      const last = events.at(-1)!;
      expect(last).toMatchObject({
        filesDone: 2,
        filesTotal: 2,
        recordsDone: n + 1,
        recordsTotal: n + 1,
        documents: n + 1,
        chunks: report.chunks,
      });
      // Reported along the way, not once at the end of the only big file.
      const during = events.filter((e) => e.filesDone === 0 && e.recordsDone > 0 && e.recordsDone < n);
      expect(during.length).toBeGreaterThan(5);
      expect(during.some((e) => e.recordsTotal >= n && e.chunks > 0 && e.chunks < report.chunks)).toBe(true);
      for (let i = 1; i < events.length; i++) {
        expect(events[i]!.recordsDone).toBeGreaterThanOrEqual(events[i - 1]!.recordsDone);
        expect(events[i]!.chunks).toBeGreaterThanOrEqual(events[i - 1]!.chunks);
        expect(events[i]!.recordsDone).toBeLessThanOrEqual(events[i]!.recordsTotal);
      }

      // A second run changes nothing, and still counts every record as handled.
      const again: IngestProgress[] = [];
      await q.ingest([file], { onProgress: (p) => again.push({ ...p }) });
      expect(again.at(-1)).toMatchObject({ recordsDone: n, recordsTotal: n, documents: 0, chunks: 0 });
    } finally {
      q.close();
    }
  });
});

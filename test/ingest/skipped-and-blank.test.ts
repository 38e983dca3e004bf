/**
 * Nothing an ingest passes over is passed over silently: symbolic links inside a folder are listed as
 * skipped with the reason (or followed when asked, each target once, a broken one an UNREADABLE_FILE error),
 * blank JSONL lines are counted, and a record without its text field is INVALID_RECORD as the ingestion docs
 * say (a present but empty text with a title is still indexed by its title). Real files, real store.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toSource } from '../../src/ingest/sources.js';
import { Quarry } from '../../src/pipeline/quarry.js';

let tmp: string;
let folder: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-skipped-'));
  folder = path.join(tmp, 'docs');
  const outside = path.join(tmp, 'outside');
  fs.mkdirSync(path.join(folder, 'sub'), { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(folder, 'real.md'), '# Real\n\nThe ferry leaves at nine.\n');
  fs.writeFileSync(path.join(outside, 'target.md'), '# Target\n\nThe lighthouse is white.\n');
  fs.writeFileSync(path.join(outside, 'nested.md'), '# Nested\n\nThe harbour is deep.\n');
  fs.symlinkSync(path.join(outside, 'target.md'), path.join(folder, 'file-link.md'));
  fs.symlinkSync(outside, path.join(folder, 'dir-link'));
  fs.symlinkSync(path.join(tmp, 'missing.md'), path.join(folder, 'broken-link.md'));
  // A link back up the tree: followed, it must not be walked forever.
  fs.symlinkSync(folder, path.join(folder, 'sub', 'loop'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const src = (...parts: string[]) => toSource(path.join(folder, ...parts));

describe('symbolic links inside an ingested folder', () => {
  it('are skipped by default, each listed with the reason', async () => {
    const q = Quarry.open({ store: path.join(tmp, 'store-default') });
    try {
      const report = await q.ingest([folder]);
      expect(report.documents.added).toEqual([src('real.md')]);
      expect(report.errors).toEqual([]);
      expect(report.skipped?.map((s) => s.path).sort()).toEqual(
        [src('broken-link.md'), src('dir-link'), src('file-link.md'), src('sub', 'loop')].sort(),
      );
      for (const s of report.skipped ?? []) expect(s.reason).toMatch(/symbolic link, not followed/);
    } finally {
      q.close();
    }
  });

  it('are followed with followSymlinks: files and folders once, a cycle not walked twice, a broken link an error', async () => {
    const q = Quarry.open({ store: path.join(tmp, 'store-follow') });
    try {
      const report = await q.ingest([folder], { followSymlinks: true });
      expect(report.documents.added.sort()).toEqual(
        [
          src('dir-link', 'nested.md'),
          src('dir-link', 'target.md'),
          src('file-link.md'),
          src('real.md'),
        ].sort(),
      );
      expect(report.errors).toEqual([
        expect.objectContaining({ path: src('broken-link.md'), code: 'UNREADABLE_FILE' }),
      ]);
      expect(report.errors[0]!.message).toMatch(/symbolic link to a missing or unreadable target/);
      expect(report.skipped).toBeUndefined();
    } finally {
      q.close();
    }
  });
});

describe('JSONL records', () => {
  it('blank lines are counted; a record without its text field is INVALID_RECORD even with a title', async () => {
    const file = path.join(tmp, 'records.jsonl');
    fs.writeFileSync(
      file,
      [
        '{"_id":"a","title":"Ferries","text":"Ferries sail daily."}',
        '',
        '   ',
        '{"_id":"b","title":"Only a title, no text field"}',
        '\t',
        '{"_id":"c","title":"Title-only BEIR document","text":""}',
        '',
      ].join('\n'),
    );
    const q = Quarry.open({ store: path.join(tmp, 'store-jsonl') });
    try {
      const report = await q.ingest([file]);
      expect(report.blankLines).toBe(3);
      expect(report.errors).toEqual([expect.objectContaining({ record: 'b', code: 'INVALID_RECORD' })]);
      expect(report.errors[0]!.message).toMatch(/line 4: no text field \(looked for "text"\)/);
      expect(report.documents.added.sort()).toEqual(['a', 'c']);
    } finally {
      q.close();
    }
  });
});

/**
 * Parsing is isolated: PDF, DOCX, HTML and Markdown parse in worker threads with a heap limit and a deadline.
 * A file whose parser needs more heap than allowed fails alone with PARSE_MEMORY_LIMIT, one that parses past
 * the deadline with PARSE_TIMEOUT; the other files of the run are stored, the process stays up, and the next
 * file gets a fresh thread. Shown through the library and through the real CLI, where the same file parsed
 * in-process (`parseIsolation: 'inline'`) takes the whole process down — the failure this prevents.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFile } from '../../src/ingest/parse.js';
import { ParseWorkers } from '../../src/ingest/parse-workers.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { runCli } from '../cli/run-cli.js';
import { makeTempDir } from './fixtures.js';

/** Legitimate-looking HTML whose DOM is large: `n` paragraphs (about 25 bytes each). */
const manyParagraphs = (n: number) =>
  `<!doctype html><html><head><title>Big</title></head><body>${'<p>a short line</p>\n'.repeat(n)}</body></html>`;

const GOOD = {
  'notes.md': '# Ferry times\n\nThe ferry to Islay leaves Kennacraig at 07:00.\n',
  'page.html':
    '<html><head><title>Opening hours</title></head><body><p>The office opens at nine.</p></body></html>',
  'plain.txt': 'Plain text is parsed in-process: it has no parser to isolate.\n',
};

describe('parse workers through the library', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTempDir();
    fs.mkdirSync(path.join(dir, 'docs'));
    for (const [name, text] of Object.entries(GOOD)) fs.writeFileSync(path.join(dir, 'docs', name), text);
    // About 10 MB of paragraphs: a DOM of 400,000 elements, far more than 32 MiB of heap.
    fs.writeFileSync(path.join(dir, 'docs', 'huge.html'), manyParagraphs(400_000));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a file that needs more heap than parseMemoryMb fails alone with PARSE_MEMORY_LIMIT', async () => {
    const q = Quarry.open({ store: path.join(dir, 'mem'), config: { ingest: { parseMemoryMb: 32 } } });
    try {
      const report = await q.ingest([path.join(dir, 'docs')]);
      expect(report.errors).toHaveLength(1);
      expect(report.errors[0]).toMatchObject({ code: 'PARSE_MEMORY_LIMIT' });
      expect(report.errors[0]!.path).toMatch(/huge\.html$/);
      expect(report.errors[0]!.message).toMatch(/32 MiB.*ingest\.parseMemoryMb/);
      expect(report.added).toBe(3);
      // The store answers from the good files, and the thread that died was replaced for the next file.
      const { hits } = await q.search('ferry Islay');
      expect(hits[0]?.document.id).toMatch(/notes\.md$/);
      const again = await q.ingest([path.join(dir, 'docs')]);
      expect(again.unchanged).toBe(3);
      expect(again.errors.map((e) => e.code)).toEqual(['PARSE_MEMORY_LIMIT']);
    } finally {
      q.close();
    }
  });

  it('a file that parses past parseTimeoutMs fails alone with PARSE_TIMEOUT; the next file parses', async () => {
    // The big file parses for seconds; the small one (its parser library loaded by a fresh thread) well under 2 s.
    const limits = { memoryMb: 1024, timeoutMs: 2000, workers: 1 };
    const pool = ParseWorkers.shared(limits);
    const before = pool.replaced;
    await expect(
      parseFile('huge.html', Buffer.from(manyParagraphs(1_600_000)), { maxBytes: 50e6, isolation: limits }),
    ).rejects.toMatchObject({ code: 'PARSE_TIMEOUT', details: { file: 'huge.html', timeoutMs: 2000 } });
    expect(pool.replaced).toBe(before + 1);
    const ok = await parseFile('page.html', Buffer.from(GOOD['page.html']), {
      maxBytes: 50e6,
      isolation: limits,
    });
    expect(ok.kind === 'document' && ok.doc.text).toMatch(/opens at nine/);
  });

  it('a Markdown list nested 1,000 levels (over 20 s to parse) ends at the deadline with PARSE_TIMEOUT', async () => {
    const limits = { memoryMb: 1024, timeoutMs: 2000, workers: 1 };
    const nested = Array.from({ length: 1000 }, (_, i) => `${'  '.repeat(i)}- level ${i}`).join('\n');
    const t0 = performance.now();
    await expect(
      parseFile('nested.md', Buffer.from(nested), { maxBytes: 50e6, isolation: limits }),
    ).rejects.toMatchObject({ code: 'PARSE_TIMEOUT' });
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('parser errors keep their codes across the thread boundary, and isolated output equals in-process output', async () => {
    const limits = { memoryMb: 256, timeoutMs: 30_000, workers: 1 };
    await expect(
      parseFile('bad.pdf', Buffer.from('%PDF-1.7 this is not a pdf'), { maxBytes: 1e6, isolation: limits }),
    ).rejects.toMatchObject({ code: 'PARSE_FAILED' });
    await expect(
      parseFile('latin.md', Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]), {
        maxBytes: 1e6,
        isolation: limits,
      }),
    ).rejects.toMatchObject({ code: 'INVALID_UTF8' });
    for (const [name, text] of Object.entries(GOOD)) {
      const isolated = await parseFile(name, Buffer.from(text), { maxBytes: 1e6, isolation: limits });
      const inline = await parseFile(name, Buffer.from(text), { maxBytes: 1e6 });
      expect(isolated).toEqual(inline);
    }
  });
});

describe('files parse concurrently but are written in the order they were found', () => {
  it('a slow file first keeps the lower document key and chunk ids (the same on every run)', async () => {
    const dir = makeTempDir();
    try {
      fs.mkdirSync(path.join(dir, 'docs'));
      // The first file takes far longer to parse than the others, which finish first in their threads.
      fs.writeFileSync(
        path.join(dir, 'docs', 'a-slow.html'),
        manyParagraphs(60_000).replace('a short line', 'zebra'),
      );
      fs.writeFileSync(path.join(dir, 'docs', 'b-quick.md'), '# Quick\n\nA quick note about a walrus.\n');
      fs.writeFileSync(path.join(dir, 'docs', 'c-quick.md'), '# Also quick\n\nAnother note about a yak.\n');
      const firstChunk = async (store: string) => {
        const q = Quarry.open({ store, config: { ingest: { concurrency: 3 } } });
        try {
          await q.ingest([path.join(dir, 'docs')]);
          const id = async (query: string) => (await q.search(query, { k: 1 })).hits[0]!.chunk.id;
          return [await id('zebra'), await id('walrus'), await id('yak')];
        } finally {
          q.close();
        }
      };
      const a = await firstChunk(path.join(dir, 's1'));
      expect(a[0]).toBeLessThan(a[1]!);
      expect(a[1]).toBeLessThan(a[2]!);
      expect(await firstChunk(path.join(dir, 's2'))).toEqual(a);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parse isolation through the CLI', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTempDir();
    fs.mkdirSync(path.join(dir, 'docs'));
    for (const [name, text] of Object.entries(GOOD)) fs.writeFileSync(path.join(dir, 'docs', name), text);
    // 40 MB of paragraphs: a DOM of 1.6 million elements, more than this CLI process's 256 MiB heap.
    fs.writeFileSync(path.join(dir, 'docs', 'huge.html'), manyParagraphs(1_600_000));
    fs.writeFileSync(path.join(dir, 'inline.json'), JSON.stringify({ ingest: { parseIsolation: 'inline' } }));
    fs.writeFileSync(path.join(dir, 'isolated.json'), JSON.stringify({ ingest: { parseMemoryMb: 128 } }));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = { NODE_OPTIONS: '--max-old-space-size=256' };

  it('in-process parsing of that file kills the whole run (the failure isolation prevents)', async () => {
    const store = path.join(dir, 'inline-store');
    const r = await runCli(
      [
        'ingest',
        path.join(dir, 'docs'),
        '--store',
        store,
        '--config',
        path.join(dir, 'inline.json'),
        '--json',
      ],
      { env, timeoutMs: 90_000 },
    );
    expect(r.code === 134 || r.signal === 'SIGABRT' || /heap out of memory/i.test(r.stderr)).toBe(true);
    expect(r.stdout).not.toMatch(/"added"/);
  }, 120_000);

  it('isolated (the default; here with 128 MiB per parser) the file fails with PARSE_MEMORY_LIMIT, exit 6, and the good files are stored', async () => {
    const store = path.join(dir, 'isolated-store');
    const config = path.join(dir, 'isolated.json');
    const r = await runCli(
      ['ingest', path.join(dir, 'docs'), '--store', store, '--config', config, '--json'],
      {
        env,
        timeoutMs: 90_000,
      },
    );
    expect(r.stderr).not.toMatch(/heap out of memory/i);
    expect(r.code).toBe(6);
    const report = JSON.parse(r.stdout);
    expect(report.added).toBe(3);
    expect(report.errors).toEqual([expect.objectContaining({ code: 'PARSE_MEMORY_LIMIT' })]);
    const check = await runCli(['check', '--store', store, '--json']);
    expect(check.code).toBe(0);
  }, 120_000);
});

import { threadId as mainThreadId } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerPool } from '../../../src/embed/pool.js';
import { QuarryError } from '../../../src/errors.js';

const SCRIPT = new URL('./fixtures/busy-worker.mjs', import.meta.url);

interface Task {
  spinMs?: number;
  crash?: boolean;
  fail?: boolean;
  echo?: number;
}
interface Result {
  threadId: number;
  start: number;
  end: number;
  echo?: number;
}

const pools: WorkerPool<Task, Result>[] = [];
async function start(size = 1, workerData: unknown = { greeting: 'hi' }) {
  const pool = await WorkerPool.start<Task, Result, { threadId: number; greeting: string }>({
    script: SCRIPT,
    size,
    workerData,
  });
  pools.push(pool as WorkerPool<Task, Result>);
  return pool;
}
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

describe('WorkerPool', () => {
  it('runs tasks on another thread while the event loop keeps ticking', async () => {
    const pool = await start();
    expect(pool.info.greeting).toBe('hi');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const r = await pool.run({ spinMs: 300 });
    clearInterval(timer);
    expect(r.threadId).not.toBe(mainThreadId);
    expect(pool.threadIds).toContain(r.threadId);
    expect(ticks).toBeGreaterThanOrEqual(10);
  });

  it('runs up to `size` tasks at once and preserves each result', async () => {
    const pool = await start(2);
    const [a, b, c] = await Promise.all([
      pool.run({ spinMs: 150, echo: 1 }),
      pool.run({ spinMs: 150, echo: 2 }),
      pool.run({ spinMs: 10, echo: 3 }),
    ]);
    expect([a.echo, b.echo, c.echo]).toEqual([1, 2, 3]);
    expect(a.threadId).not.toBe(b.threadId);
    // The first two overlapped in time; the third waited for a free worker.
    expect(a.start).toBeLessThan(b.end);
    expect(b.start).toBeLessThan(a.end);
    expect(c.start).toBeGreaterThanOrEqual(Math.min(a.end, b.end) - 1);
  });

  it('turns worker errors into rejections and keeps going', async () => {
    const pool = await start();
    await expect(pool.run({ fail: true })).rejects.toThrow(/task failed on purpose/);
    expect((await pool.run({ echo: 7 })).echo).toBe(7);
  });

  it('fails the task of a crashed worker, replaces the worker and runs queued tasks', async () => {
    const pool = await start();
    const crash = pool.run({ crash: true });
    const next = pool.run({ echo: 9 });
    const err = await crash.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(QuarryError);
    expect((err as QuarryError).message).toMatch(/exited \(code 3\)/);
    expect((await next).echo).toBe(9);
  });

  it('rejects a queued task on abort without running it', async () => {
    const pool = await start();
    const busy = pool.run({ spinMs: 150, echo: 1 });
    const ctl = new AbortController();
    const queued = pool.run({ echo: 2 }, { signal: ctl.signal });
    expect(pool.queued).toBe(1);
    ctl.abort(new Error('never mind'));
    await expect(queued).rejects.toThrow('never mind');
    expect(pool.queued).toBe(0);
    expect((await busy).echo).toBe(1);
    expect((await pool.run({ echo: 3 })).echo).toBe(3);
  });

  it('fails to start with the worker’s own error', async () => {
    await expect(start(2, { failInit: true })).rejects.toMatchObject({
      code: 'EMBEDDING_MODEL_LOAD',
      message: expect.stringContaining('no model here'),
    });
  });

  it('rejects work after close', async () => {
    const pool = await start();
    await pool.close();
    await expect(pool.run({ echo: 1 })).rejects.toThrow(/closed/);
  });

  it('validates its size', async () => {
    await expect(start(0)).rejects.toThrow(/pool size/);
  });
});

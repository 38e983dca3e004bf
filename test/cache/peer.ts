/**
 * Drives a second Quarry process (test/fixtures/cache-peer-child.ts) over stdin/stdout JSON lines, and
 * helpers for a per-test Redis key prefix that is deleted afterwards.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import { Redis } from 'ioredis';

const REPO = path.resolve(import.meta.dirname, '../..');
export const REDIS_URL = 'redis://127.0.0.1:6379';

type Reply = Record<string, unknown>;

export class Peer {
  private readonly child: ChildProcessWithoutNullStreams;
  private next = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  readonly events: Reply[] = [];
  private readonly eventWaiters: Array<(e: Reply) => void> = [];
  stderr = '';

  constructor(store: string, config: unknown) {
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/cache-peer-child.ts', store, JSON.stringify(config)],
      { cwd: REPO },
    );
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      const m = JSON.parse(line) as Reply;
      if (typeof m.event === 'string') {
        this.events.push(m);
        for (const w of this.eventWaiters.splice(0)) w(m);
        return;
      }
      this.waiting.get(m.id as number)?.(m);
      this.waiting.delete(m.id as number);
    });
  }

  send(op: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`peer ${op} timed out; stderr: ${this.stderr}`)),
        30_000,
      );
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        if (typeof r.error === 'string') reject(new Error(`peer ${op}: ${r.error}`));
        else resolve(r);
      });
      this.child.stdin.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  /** The first event already received, or the next one (within `ms`). */
  event(ms = 5000): Promise<Reply> {
    const first = this.events[0];
    if (first !== undefined) return Promise.resolve(first);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms);
      this.eventWaiters.push((e) => {
        clearTimeout(timer);
        resolve(e);
      });
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.send('close').catch(() => this.child.kill());
    this.child.stdin.end();
    await exited;
  }
}

/** A key prefix no other test uses. */
export function uniquePrefix(): string {
  return `quarry-test:${randomUUID()}:`;
}

/** Keys under `prefix` (and deletes them when `remove`). */
export async function redisKeys(prefix: string, remove = false): Promise<string[]> {
  const r = new Redis(REDIS_URL);
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      keys.push(...found);
      cursor = next;
    } while (cursor !== '0');
    if (remove && keys.length > 0) await r.del(...keys);
    return keys;
  } finally {
    r.disconnect();
  }
}

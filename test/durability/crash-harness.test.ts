/**
 * Crash harness: a child process (test/fixtures/crash-child.mjs, on the built dist/) ingests a folder whose
 * files it adds, modifies and removes, ingests JSONL batches that add and replace records, and deletes
 * records, printing `ack <n>` after each committed operation; this test SIGKILLs it at seeded random points
 * (after a random delay, or right on an ack) at least 50 times. After every kill the store must pass
 * `quarry check` as it is on disk and again once opened, every acknowledged document must be there exactly
 * once in the acknowledged state (or the state of the one operation in flight), with all its chunks in the
 * BM25 index, and no document may be half-written (its chunks always the same as when first seen).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkStoreDir } from '../../src/pipeline/check.js';
import { Quarry } from '../../src/pipeline/quarry.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const DIST = path.join(REPO, 'dist');
const CHILD = path.join(REPO, 'test/fixtures/crash-child.mjs');
const LANES = 2;
const KILLS_PER_LANE = 26;
const MAX_RUNS_PER_LANE = 60;
const SEED = Number(process.env.QUARRY_CRASH_SEED ?? 20261204);

type State = Map<string, number | null>;
type Op =
  | { kind: 'folder'; writes: Array<{ key: string; version: number | null }> }
  | { kind: 'jsonl'; file: string; records: Array<{ key: string; version: number }> }
  | { kind: 'delete'; keys: string[] };

/** mulberry32: a small seeded generator, so a failing run can be replayed with QUARRY_CRASH_SEED. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MARKER = /marker (\S+) v(\d+)/;
const FOLDER_KEYS = Array.from({ length: 12 }, (_, i) => `f-${i}`);
const RECORD_KEYS = Array.from({ length: 30 }, (_, i) => `rec-${i}`);

let work: string;
beforeAll(() => {
  if (!fs.existsSync(path.join(DIST, 'pipeline/quarry.js')))
    throw new Error('dist/ is not built: run `node scripts/build.mjs` (the global setup does)');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-crash-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

interface Lane {
  dir: string;
  store: string;
  random: () => number;
  /** What the store holds, as observed (and verified) after the last kill. */
  baseline: State;
  versions: Map<string, number>;
  /** Chunk texts of each (key, version) the first time it was seen: a document is never half-written. */
  chunksSeen: Map<string, string>;
  runs: number;
  kills: number;
  checks: number;
  verified: number;
  /** Kills after which the store held the effect of the operation in flight (committed, not yet acknowledged). */
  inFlightSeen: number;
  /** Checks on disk that compared a current dense snapshot with the store. */
  denseChecked: number;
}

/** The folder's files as they are on disk now (a killed run may have written some it never ingested). */
function diskFolder(lane: Lane): Map<string, number> {
  const out = new Map<string, number>();
  const dir = path.join(lane.dir, 'docs');
  if (!fs.existsSync(dir)) return out;
  for (const f of fs.readdirSync(dir)) {
    const m = MARKER.exec(fs.readFileSync(path.join(dir, f), 'utf8'));
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** A plan of operations and the store state after each one is committed. */
function makePlan(lane: Lane): { ops: Op[]; after: State[] } {
  const r = lane.random;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const next = (key: string) => {
    const v = (lane.versions.get(key) ?? 0) + 1;
    lane.versions.set(key, v);
    return v;
  };
  const disk = diskFolder(lane);
  let state: State = new Map(lane.baseline);
  const ops: Op[] = [];
  const after: State[] = [];
  for (let n = 0; n < 24; n++) {
    const x = r();
    let op: Op;
    if (x < 0.4) {
      const writes: Array<{ key: string; version: number | null }> = [];
      for (let i = 0, w = 1 + Math.floor(r() * 3); i < w; i++) {
        const key = pick(FOLDER_KEYS);
        const version = disk.has(key) && r() < 0.2 ? null : next(key);
        writes.push({ key, version });
        if (version === null) disk.delete(key);
        else disk.set(key, version);
      }
      op = { kind: 'folder', writes };
      // A folder ingest makes the folder's documents exactly its files.
      state = new Map(state);
      for (const key of FOLDER_KEYS) state.set(key, disk.get(key) ?? null);
    } else if (x < 0.8 || ![...state].some(([k, v]) => k.startsWith('rec-') && v !== null)) {
      const records = new Map<string, number>();
      for (let i = 0, w = 2 + Math.floor(r() * 3); i < w; i++) {
        const key = pick(RECORD_KEYS);
        if (!records.has(key)) records.set(key, next(key));
      }
      op = {
        kind: 'jsonl',
        file: `b-${lane.runs}-${n}.jsonl`,
        records: [...records].map(([key, version]) => ({ key, version })),
      };
      state = new Map(state);
      for (const [key, version] of records) state.set(key, version);
    } else {
      const present = [...state].filter(([k, v]) => k.startsWith('rec-') && v !== null).map(([k]) => k);
      const keys = [...new Set([pick(present), pick(present)])];
      op = { kind: 'delete', keys };
      state = new Map(state);
      for (const key of keys) state.set(key, null);
    }
    ops.push(op);
    after.push(state);
  }
  return { ops, after };
}

/** Run the child on a plan and SIGKILL it at a random point; returns the last acknowledged operation. */
function runAndKill(lane: Lane, ops: Op[]): Promise<{ lastAck: number; killed: boolean }> {
  const planFile = path.join(lane.dir, `plan-${lane.runs}.json`);
  fs.writeFileSync(planFile, JSON.stringify({ dense: true, ops }));
  const onAck = lane.random() < 0.5;
  const atAck = Math.floor(lane.random() * 4);
  const delayMs = 5 + Math.floor(lane.random() * 250);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, DIST, lane.store, lane.dir, planFile], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lastAck = -1;
    let out = '';
    let stderr = '';
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const guard = setTimeout(kill, 20_000);
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.stdout.on('data', (d) => {
      out += String(d);
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready' && !onAck) setTimeout(kill, delayMs);
        const m = /^ack (\d+)$/.exec(line);
        if (m) {
          lastAck = Number(m[1]);
          if (onAck && lastAck >= atAck) kill();
        }
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (signal === 'SIGKILL') resolve({ lastAck, killed: true });
      else if (code === 0) resolve({ lastAck, killed: false });
      else reject(new Error(`crash child exited ${code}: ${stderr}`));
    });
  });
}

/** After a kill: check the store, and compare what it holds with what was acknowledged. */
function verify(lane: Lane, acked: State, inFlight: State | undefined): void {
  if (!fs.existsSync(path.join(lane.store, 'quarry.db'))) {
    // Killed before the store was first created: nothing may have been acknowledged.
    expect([...acked.values()].every((v) => v === null)).toBe(true);
    return;
  }
  const onDisk = checkStoreDir(lane.store);
  expect(onDisk.findings.filter((f) => f.severity === 'error')).toEqual([]);
  lane.checks++;
  if (onDisk.counts.denseSnapshot !== null && !onDisk.findings.some((f) => f.code === 'DENSE_SNAPSHOT_STALE'))
    lane.denseChecked++;
  const q = Quarry.open({ store: lane.store, create: false });
  try {
    // Opening rebuilt a stale BM25 snapshot; a stale dense one waits for the first dense query (a warning).
    const opened = q.check();
    expect(opened.findings.filter((f) => f.code !== 'DENSE_SNAPSHOT_STALE')).toEqual([]);
    lane.checks++;
    const chunksOf = new Map<string, Array<{ id: number; ordinal: number; text: string }>>();
    for (const c of q.store.iterateChunks()) {
      const list = chunksOf.get(c.docId) ?? [];
      list.push({ id: c.id, ordinal: c.ordinal, text: c.text });
      chunksOf.set(c.docId, list);
    }
    const observed: State = new Map();
    let sawInFlight = false;
    for (const d of q.store.listDocuments()) {
      const text = q.store.getDocument(d.id)!.text;
      const m = MARKER.exec(text);
      expect(m, `document ${d.id} has no marker`).not.toBeNull();
      const key = m![1]!;
      expect(observed.has(key), `${key} is stored twice`).toBe(false);
      observed.set(key, Number(m![2]));
      if (key.startsWith('rec-')) expect(d.id).toBe(key);
      const chunks = (chunksOf.get(d.id) ?? []).sort((a, b) => a.ordinal - b.ordinal);
      expect(chunks.length, `${key} has no chunks`).toBeGreaterThan(0);
      expect(chunks.map((c) => c.ordinal)).toEqual(chunks.map((_, i) => i));
      for (const c of chunks)
        expect(q.lexical.bm25.has(c.id), `chunk ${c.id} of ${key} not in BM25`).toBe(true);
      const signature = chunks.map((c) => c.text).join('\u0000');
      const seenKey = `${key} v${m![2]}`;
      const first = lane.chunksSeen.get(seenKey);
      if (first === undefined) lane.chunksSeen.set(seenKey, signature);
      else expect(signature, `${seenKey} has other chunks than before`).toBe(first);
    }
    expect(q.lexical.bm25.size).toBe(q.stats().chunks);
    for (const key of [...FOLDER_KEYS, ...RECORD_KEYS]) {
      const got = observed.get(key) ?? null;
      const want = acked.get(key) ?? null;
      const alt = inFlight?.get(key) ?? null;
      expect([want, alt], `${key}: stored ${got}, acknowledged ${want}, in flight ${alt}`).toContain(got);
      if (want !== null && got === want) lane.verified++;
      if (got !== want) sawInFlight = true;
    }
    if (sawInFlight) lane.inFlightSeen++;
    lane.baseline = observed;
  } finally {
    q.close();
  }
}

async function runLane(index: number): Promise<Lane> {
  const dir = path.join(work, `lane-${index}`);
  fs.mkdirSync(dir, { recursive: true });
  const lane: Lane = {
    dir,
    store: path.join(dir, 'store'),
    random: rng(SEED + index * 7919),
    baseline: new Map(),
    versions: new Map(),
    chunksSeen: new Map(),
    runs: 0,
    kills: 0,
    checks: 0,
    verified: 0,
    inFlightSeen: 0,
    denseChecked: 0,
  };
  while (lane.kills < KILLS_PER_LANE && lane.runs < MAX_RUNS_PER_LANE) {
    const { ops, after } = makePlan(lane);
    const { lastAck, killed } = await runAndKill(lane, ops);
    lane.runs++;
    if (killed) lane.kills++;
    const acked = lastAck < 0 ? lane.baseline : after[lastAck]!;
    verify(lane, acked, killed ? after[lastAck + 1] : undefined);
  }
  return lane;
}

describe('SIGKILL at random points during ingest, delete and re-ingest', () => {
  it(`leaves a store that passes check with every acknowledged document, ${LANES * KILLS_PER_LANE}+ kills`, async () => {
    const started = Date.now();
    const lanes = await Promise.all(Array.from({ length: LANES }, (_, i) => runLane(i)));
    const sum = (f: (l: Lane) => number) => lanes.reduce((a, l) => a + f(l), 0);
    const kills = sum((l) => l.kills);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `crash harness (seed ${SEED}): ${kills} kills in ${sum((l) => l.runs)} runs, ${sum((l) => l.checks)} checks passed, ` +
        `${sum((l) => l.verified)} acknowledged documents verified, ${sum((l) => l.inFlightSeen)} kills with an ` +
        `unacknowledged operation already committed, ${sum((l) => l.denseChecked)} checks of a current dense snapshot, ${seconds} s`,
    );
    expect(kills).toBeGreaterThanOrEqual(50);
    expect(sum((l) => l.verified)).toBeGreaterThan(kills);
  }, 120_000);
});

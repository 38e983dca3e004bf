/**
 * Collections: named stores a tenant owns. `default` is the store the server was started on (tenant
 * `default`); others live under `<store>/collections/<name>`, each a full Quarry store with its own indexes.
 * A principal of one tenant cannot name another tenant's collection: it gets the same NOT_FOUND as a name
 * that does not exist, so existence does not leak either. Writes to one collection run one at a time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Principal, TRUSTED_LOCAL } from '../access/principal.js';
import type { QuarryConfigInput } from '../config/config.js';
import { QuarryError } from '../errors.js';
import { indexFreshness, registerIndexProbe } from '../observability/metrics.js';
import { Quarry } from '../pipeline/quarry.js';
import type { ServerDb } from './db.js';

export const DEFAULT_COLLECTION = 'default';
export const DEFAULT_TENANT = 'default';
const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export interface CollectionInfo {
  name: string;
  tenant: string;
  createdAt: string;
}

export class Collections {
  private readonly open = new Map<string, Quarry>();
  /** Stops each open collection's index-staleness probe (metrics) when it closes. */
  private readonly probes = new Map<string, () => void>();
  private readonly writeQueues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly db: ServerDb,
    private readonly root: string,
    private readonly config: QuarryConfigInput,
  ) {}

  /** The tenant a principal acts for (trusted local callers act for the default tenant unless told). */
  static tenantOf(p: Principal): string | undefined {
    if (p.kind === 'user') return p.tenant;
    if (p.kind === 'trusted') return p.tenant;
    return undefined;
  }

  list(p: Principal): CollectionInfo[] {
    const all: CollectionInfo[] = [
      { name: DEFAULT_COLLECTION, tenant: DEFAULT_TENANT, createdAt: this.rootCreatedAt() },
      ...(
        this.db.prepare('SELECT name, tenant, created_at FROM collections ORDER BY name').all() as Array<{
          name: string;
          tenant: string;
          created_at: string;
        }>
      ).map((r) => ({ name: r.name, tenant: r.tenant, createdAt: r.created_at })),
    ];
    return all.filter((c) => this.visible(p, c));
  }

  /** Resolve a collection name for a principal; NOT_FOUND when it does not exist or belongs to another tenant. */
  info(p: Principal, name: string | undefined): CollectionInfo {
    const n = name ?? DEFAULT_COLLECTION;
    const found =
      n === DEFAULT_COLLECTION
        ? { name: n, tenant: DEFAULT_TENANT, createdAt: this.rootCreatedAt() }
        : (() => {
            const r = this.db
              .prepare('SELECT name, tenant, created_at FROM collections WHERE name = ?')
              .get(n) as { name: string; tenant: string; created_at: string } | undefined;
            return r === undefined ? undefined : { name: r.name, tenant: r.tenant, createdAt: r.created_at };
          })();
    if (found === undefined || !this.visible(p, found))
      throw new QuarryError('NOT_FOUND', `no collection "${n}"`, { collection: n });
    return found;
  }

  /** The open Quarry instance behind a collection the principal may use. */
  get(p: Principal, name: string | undefined): { quarry: Quarry; info: CollectionInfo } {
    const info = this.info(p, name);
    return { quarry: this.instance(info.name), info };
  }

  /** The store directory of a collection the principal may use (eval runs and uploads live beside it). */
  storeDir(p: Principal, name: string | undefined): string {
    return this.dirOf(this.info(p, name).name);
  }

  /** A collection's store directory by name, for the server's own use (the canary's candidate store). */
  storeDirUnchecked(name: string): string {
    return this.dirOf(name);
  }

  create(p: Principal, name: string): CollectionInfo {
    if (!NAME.test(name))
      throw new QuarryError(
        'INVALID_ARGUMENT',
        `collection name "${name}" must be 1-64 lowercase letters, digits, "_" or "-", starting with a letter or digit`,
        { collection: name },
      );
    const tenant = Collections.tenantOf(p) ?? DEFAULT_TENANT;
    const exists =
      name === DEFAULT_COLLECTION ||
      this.db.prepare('SELECT 1 FROM collections WHERE name = ?').get(name) !== undefined;
    if (exists)
      throw new QuarryError('INVALID_ARGUMENT', `collection "${name}" already exists`, { collection: name });
    const createdAt = new Date().toISOString();
    this.db
      .prepare('INSERT INTO collections (name, tenant, created_at) VALUES (?, ?, ?)')
      .run(name, tenant, createdAt);
    const q = Quarry.open({ store: this.dirOf(name), config: this.config, create: true });
    this.open.set(name, q);
    return { name, tenant, createdAt };
  }

  /** Delete a collection and its store (never the default one). */
  delete(p: Principal, name: string): void {
    const info = this.info(p, name);
    if (info.name === DEFAULT_COLLECTION)
      throw new QuarryError('INVALID_ARGUMENT', 'the default collection cannot be deleted');
    this.closeOne(name);
    this.db.prepare('DELETE FROM collections WHERE name = ?').run(name);
    fs.rmSync(this.dirOf(name), { recursive: true, force: true });
  }

  /** Run writes to one collection one after another (ingest, delete), in arrival order. */
  serialize<T>(collection: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.writeQueues.get(collection) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.writeQueues.set(collection, settled);
    return next;
  }

  /**
   * Open the default collection's indexes and run one search through them, so the lazily loaded parts
   * (analyzer tables, the typo dictionary, the fusion path) are in memory before `/readyz` says ready.
   */
  warm(): void {
    const q = this.instance(DEFAULT_COLLECTION);
    try {
      q.searchSync('warm up the index', { principal: TRUSTED_LOCAL, cache: false, k: 1 });
    } catch {
      // A store that cannot answer yet (e.g. empty) is still ready to take documents.
    }
  }

  /** Where a collection keeps uploaded files (their documents' source). */
  uploadsDir(name: string): string {
    const dir = path.join(this.dirOf(name), 'uploads');
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Staging area for uploads in progress (same file system, so the final move is a rename). */
  uploadsTmp(): string {
    const dir = path.join(this.root, '.uploads-tmp');
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }

  openInstances(): Array<[string, Quarry]> {
    return [...this.open.entries()];
  }

  close(): void {
    for (const name of [...this.open.keys()]) this.closeOne(name);
  }

  /** The collection's Quarry instance, opened (and its staleness reported to /metrics) on first use. */
  private instance(name: string): Quarry {
    let q = this.open.get(name);
    if (q === undefined) {
      const opened = Quarry.open({ store: this.dirOf(name), config: this.config, create: true });
      q = opened;
      this.open.set(name, opened);
      this.probes.set(
        name,
        registerIndexProbe(name, () => indexFreshness(opened.stats())),
      );
    }
    return q;
  }

  private closeOne(name: string): void {
    this.probes.get(name)?.();
    this.probes.delete(name);
    this.open.get(name)?.close();
    this.open.delete(name);
  }

  private visible(p: Principal, c: CollectionInfo): boolean {
    if (p.kind === 'trusted') return p.tenant === undefined || p.tenant === c.tenant;
    if (p.kind === 'user') return p.tenant === c.tenant;
    return false;
  }

  private dirOf(name: string): string {
    return name === DEFAULT_COLLECTION ? this.root : path.join(this.root, 'collections', name);
  }

  private rootCreatedAt(): string {
    try {
      return fs.statSync(this.root).birthtime.toISOString();
    } catch {
      return new Date(0).toISOString();
    }
  }
}

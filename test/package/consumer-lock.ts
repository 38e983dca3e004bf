/**
 * A lockfile for a fresh project that depends on Quarry's packed tarball, derived from Quarry's own lockfile,
 * so that `npm ci --offline` installs it from the local npm cache alone: npm ci reads tarballs by integrity
 * and needs no registry metadata, which an `npm install` would fetch.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  peer?: boolean;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  [key: string]: unknown;
}

interface Lockfile {
  name: string;
  version: string;
  lockfileVersion: number;
  requires: boolean;
  packages: Record<string, LockEntry>;
}

/**
 * Quarry's lockfile records integrity without tarball URLs; given the URL the registry serves it at, npm ci
 * finds each tarball in its cache by integrity without asking the registry for the package's metadata.
 */
function withTarballUrl(at: string, entry: LockEntry): LockEntry {
  if (entry.resolved !== undefined || entry.link === true || entry.version === undefined) return entry;
  const name = at.slice(at.lastIndexOf('node_modules/') + 'node_modules/'.length);
  const base = name.slice(name.lastIndexOf('/') + 1);
  return { ...entry, resolved: `https://registry.npmjs.org/${name}/-/${base}-${entry.version}.tgz` };
}

/** Where Node's resolution from `from` (a lockfile path, '' for the root) finds package `name`. */
function resolveIn(packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = `${dir === '' ? '' : `${dir}/`}node_modules/${name}`;
    if (packages[candidate] !== undefined) return candidate;
    if (dir === '') return undefined;
    const cut = dir.lastIndexOf('/node_modules/');
    dir = cut < 0 ? '' : dir.slice(0, cut);
  }
}

export interface ConsumerLockOptions {
  /** Quarry's own package-lock.json. */
  quarryLock: string;
  /** The packed tarball, and how the consumer's package.json refers to it (e.g. `file:../quarry-0.1.0.tgz`). */
  tarball: string;
  tarballSpec: string;
  /** Further packages the consumer installs, taken at Quarry's locked versions (e.g. typescript). */
  extra: string[];
}

/** The consumer's package.json dependencies and its lockfile. */
export function consumerLock(o: ConsumerLockOptions): {
  dependencies: Record<string, string>;
  lock: Lockfile;
} {
  const ours = JSON.parse(fs.readFileSync(o.quarryLock, 'utf8')) as Lockfile;
  const root = ours.packages['']!;
  const out: Record<string, LockEntry> = {};
  const pending: Array<[string, string]> = [];
  const want = (from: string, deps: Record<string, string> | undefined) => {
    for (const name of Object.keys(deps ?? {})) pending.push([from, name]);
  };
  want('', root.dependencies);
  want('', root.optionalDependencies);
  while (pending.length > 0) {
    const [from, name] = pending.pop()!;
    const at = resolveIn(ours.packages, from, name);
    if (at === undefined || out[at] !== undefined) continue; // an optional package for another platform
    const { dev: _dev, devOptional: _devOptional, ...entry } = ours.packages[at]!;
    out[at] = withTarballUrl(at, entry);
    want(at, entry.dependencies);
    want(at, entry.optionalDependencies);
  }
  // Packages reached only through `extra` are the consumer's own dependencies, marked as npm would.
  const extras: Record<string, string> = {};
  for (const name of o.extra) {
    const entry = ours.packages[`node_modules/${name}`];
    if (entry?.version === undefined) throw new Error(`${name} is not in Quarry's lockfile`);
    extras[name] = entry.version;
    pending.push(['', name]);
  }
  while (pending.length > 0) {
    const [from, name] = pending.pop()!;
    const at = resolveIn(ours.packages, from, name);
    if (at === undefined || out[at] !== undefined) continue;
    const { dev: _dev, devOptional: _devOptional, ...entry } = ours.packages[at]!;
    out[at] = withTarballUrl(at, entry);
    want(at, entry.dependencies);
  }
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
    license: string;
    engines: Record<string, string>;
    bin: Record<string, string>;
    dependencies: Record<string, string>;
  };
  const integrity = `sha512-${createHash('sha512').update(fs.readFileSync(o.tarball)).digest('base64')}`;
  out['node_modules/quarry'] = {
    version: pkg.version,
    resolved: o.tarballSpec,
    integrity,
    license: pkg.license,
    dependencies: pkg.dependencies,
    bin: pkg.bin,
    engines: pkg.engines,
  };
  const dependencies = { quarry: o.tarballSpec, ...extras };
  return {
    dependencies,
    lock: {
      name: 'consumer',
      version: '1.0.0',
      lockfileVersion: 3,
      requires: true,
      packages: { '': { name: 'consumer', version: '1.0.0', dependencies }, ...out },
    },
  };
}

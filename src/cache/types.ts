/**
 * The cache contract every layer (embeddings, retrieval results, final responses) is written against: an
 * async key-value store with namespaces and time-to-live, one file per driver (./memory.ts, ./redis.ts).
 * Optional capabilities (sharing between processes, publish/subscribe) are flags plus optional methods.
 */

export interface CacheDriver {
  readonly name: 'memory' | 'redis';
  readonly flags: {
    /** Entries are visible to every process using the same backend (and key prefix). */
    shared: boolean;
    /** `publish`/`subscribe` reach every other process on the same backend. */
    pubsub: boolean;
  };
  /** The stored value, or undefined for a miss or an expired entry. Throws when the backend is unreachable. */
  get<T>(namespace: string, key: string): Promise<T | undefined>;
  /** One answer per key, in order (a single round trip on a remote backend). */
  getMany<T>(namespace: string, keys: readonly string[]): Promise<(T | undefined)[]>;
  /** Stores `value` (JSON-serializable; Float32Array allowed) for `ttlMs` (default: the driver's). */
  set(namespace: string, key: string, value: unknown, ttlMs?: number): Promise<void>;
  delete(namespace: string, key: string): Promise<void>;
  /** Drops every entry of one namespace. */
  clear(namespace: string): Promise<void>;
  /** Sends `message` to every subscriber of `channel` (in any process). */
  publish?(channel: string, message: string): Promise<void>;
  /** Calls `onMessage` for each message on `channel`; resolves once the subscription is active. */
  subscribe?(channel: string, onMessage: (message: string) => void): Promise<void>;
  /** Resolves once the backend answers (connects if needed); throws an actionable error when it cannot. */
  ready(): Promise<void>;
  /** Closes connections at once (pending commands fail); never throws. */
  close(): void;
}

export interface CacheDriverOptions {
  /** Entries per namespace kept in process (memory driver; default 1000). */
  maxEntries?: number;
  /** Default time-to-live in ms; unset = entries live until evicted or cleared. */
  ttlMs?: number;
}

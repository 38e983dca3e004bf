/**
 * Stored evaluation runs: `quarry eval --record` keeps each report in the store (`<store>/eval.db`), with
 * every query's metrics and latency and the traces of the worst queries, so the web UI's dashboard can plot
 * metrics over time, show a run's latency distribution and open the trace of a query that did badly. The
 * file is separate from the store's main database: recording a run never migrates or locks the index.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { QuarryError } from '../errors.js';
import type { TraceReport } from '../types.js';
import type { EvalReport } from './run-eval.js';

export const EVAL_DB = 'eval.db';

/** One evaluated query of a run. */
export interface EvalQueryRecord {
  /** The dataset's query id. */
  id: string;
  text: string;
  metrics: Record<string, number>;
  latencyMs: number;
  /** The first ranked document ids (up to 10), for the dashboard's worst-query list. */
  top?: string[];
  /** Kept for the worst queries only. */
  trace?: TraceReport;
}

export interface EvalRunSummary {
  id: string;
  createdAt: string;
  label: string | null;
  dataset: string;
  split: string;
  retriever: string;
  queries: number;
  metrics: Record<string, number>;
  latency_ms: EvalReport['latency_ms'];
}

export interface EvalRunDetail extends EvalRunSummary {
  report: EvalReport;
  /** Every query's latency, in query order (the distribution the dashboard draws). */
  latencies_ms: number[];
  /** The worst queries by the run's primary metric (lowest first), with whether a trace is kept. */
  worst: Array<{
    queryId: string;
    query: string;
    metrics: Record<string, number>;
    latencyMs: number;
    top: string[];
    hasTrace: boolean;
  }>;
}

/** The metric that orders queries from worst to best: nDCG@10 when present, else the first one. */
export function primaryMetric(metrics: Record<string, number>): string | undefined {
  return 'ndcg@10' in metrics ? 'ndcg@10' : Object.keys(metrics)[0];
}

/** The `n` worst queries by `metric` (ties: the slower first), without mutating `queries`. */
export function worstQueries<Q extends { metrics: Record<string, number>; latencyMs: number }>(
  queries: readonly Q[],
  metric: string,
  n: number,
): Q[] {
  return [...queries]
    .sort((a, b) => (a.metrics[metric] ?? 0) - (b.metrics[metric] ?? 0) || b.latencyMs - a.latencyMs)
    .slice(0, n);
}

export class EvalRuns {
  private constructor(private readonly db: Database.Database) {}

  /**
   * Opens the run database of the store at `dir` (created when `create`); when it does not exist and is
   * not to be created, an empty in-memory one (no runs), so readers need no special case.
   */
  static open(dir: string, opts: { create?: boolean; readonly?: boolean } = {}): EvalRuns {
    const file = path.join(dir, EVAL_DB);
    if (!fs.existsSync(file) && opts.create !== true)
      return new EvalRuns(EvalRuns.init(new Database(':memory:')));
    if (opts.create === true) fs.mkdirSync(dir, { recursive: true });
    if (opts.readonly === true) {
      const db = new Database(file, { readonly: true });
      db.pragma('busy_timeout = 5000');
      return new EvalRuns(db);
    }
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    return new EvalRuns(EvalRuns.init(db));
  }

  private static init(db: Database.Database): Database.Database {
    db.exec(`
      CREATE TABLE IF NOT EXISTS runs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        label TEXT,
        dataset TEXT NOT NULL,
        split TEXT NOT NULL,
        retriever TEXT NOT NULL,
        queries INTEGER NOT NULL,
        report TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS run_queries (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        query_id TEXT NOT NULL,
        text TEXT NOT NULL,
        metrics TEXT NOT NULL,
        latency_ms REAL NOT NULL,
        top TEXT,
        trace TEXT,
        PRIMARY KEY (run_id, query_id)
      );`);
    return db;
  }

  /** Stores a run atomically; returns its id. Only the `keepTraces` worst queries keep their trace. */
  record(report: EvalReport, queries: readonly EvalQueryRecord[], opts: { label?: string } = {}): string {
    const id = `${new Date()
      .toISOString()
      .replace(/[-:.TZ]/g, '')
      .slice(0, 14)}-${Math.random().toString(36).slice(2, 8)}`;
    const insertRun = this.db.prepare(
      `INSERT INTO runs (id, created_at, label, dataset, split, retriever, queries, report)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insertQuery = this.db.prepare(
      `INSERT INTO run_queries (run_id, ord, query_id, text, metrics, latency_ms, top, trace)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      insertRun.run(
        id,
        new Date().toISOString(),
        opts.label ?? null,
        report.dataset,
        report.split,
        report.retriever,
        report.queries,
        JSON.stringify(report),
      );
      for (const [i, q] of queries.entries())
        insertQuery.run(
          id,
          i,
          q.id,
          q.text,
          JSON.stringify(q.metrics),
          q.latencyMs,
          q.top === undefined ? null : JSON.stringify(q.top),
          q.trace === undefined ? null : JSON.stringify(q.trace),
        );
    })();
    return id;
  }

  /** The newest runs first (optionally of one dataset). */
  list(opts: { limit?: number; dataset?: string } = {}): EvalRunSummary[] {
    const rows = this.db
      .prepare(
        `SELECT id, created_at, label, report FROM runs ${opts.dataset === undefined ? '' : 'WHERE dataset = @dataset'}
         ORDER BY seq DESC LIMIT @limit`,
      )
      .all({
        limit: opts.limit ?? 100,
        ...(opts.dataset === undefined ? {} : { dataset: opts.dataset }),
      }) as Array<{
      id: string;
      created_at: string;
      label: string | null;
      report: string;
    }>;
    return rows.map((r) => summary(r.id, r.created_at, r.label, JSON.parse(r.report) as EvalReport));
  }

  /** One run with its latency distribution and its `worst` worst queries; NOT_FOUND when unknown. */
  get(id: string, opts: { worst?: number } = {}): EvalRunDetail {
    const row = this.db.prepare('SELECT id, created_at, label, report FROM runs WHERE id = ?').get(id) as
      | { id: string; created_at: string; label: string | null; report: string }
      | undefined;
    if (row === undefined) throw new QuarryError('NOT_FOUND', `no eval run with id "${id}"`, { runId: id });
    const report = JSON.parse(row.report) as EvalReport;
    const queries = (
      this.db
        .prepare(
          'SELECT query_id, text, metrics, latency_ms, top, trace IS NOT NULL AS has_trace FROM run_queries WHERE run_id = ? ORDER BY ord',
        )
        .all(id) as Array<{
        query_id: string;
        text: string;
        metrics: string;
        latency_ms: number;
        top: string | null;
        has_trace: number;
      }>
    ).map((q) => ({
      queryId: q.query_id,
      query: q.text,
      metrics: JSON.parse(q.metrics) as Record<string, number>,
      latencyMs: q.latency_ms,
      top: q.top === null ? [] : (JSON.parse(q.top) as string[]),
      hasTrace: q.has_trace === 1,
    }));
    const metric = primaryMetric(report.metrics) ?? '';
    const worst = worstQueries(queries, metric, opts.worst ?? 20);
    return {
      ...summary(row.id, row.created_at, row.label, report),
      report,
      latencies_ms: queries.map((q) => q.latencyMs),
      worst,
    };
  }

  /** The kept trace of one query of a run; NOT_FOUND when the run, the query or its trace is unknown. */
  trace(
    runId: string,
    queryId: string,
  ): { query: string; metrics: Record<string, number>; trace: TraceReport; top: string[] } {
    const row = this.db
      .prepare('SELECT text, metrics, top, trace FROM run_queries WHERE run_id = ? AND query_id = ?')
      .get(runId, queryId) as
      | { text: string; metrics: string; top: string | null; trace: string | null }
      | undefined;
    if (row === undefined || row.trace === null)
      throw new QuarryError('NOT_FOUND', `no trace kept for query "${queryId}" of eval run "${runId}"`, {
        runId,
        queryId,
      });
    return {
      query: row.text,
      metrics: JSON.parse(row.metrics) as Record<string, number>,
      top: row.top === null ? [] : (JSON.parse(row.top) as string[]),
      trace: JSON.parse(row.trace) as TraceReport,
    };
  }

  close(): void {
    this.db.close();
  }
}

function summary(id: string, createdAt: string, label: string | null, r: EvalReport): EvalRunSummary {
  return {
    id,
    createdAt,
    label,
    dataset: r.dataset,
    split: r.split,
    retriever: r.retriever,
    queries: r.queries,
    metrics: r.metrics,
    latency_ms: r.latency_ms,
  };
}

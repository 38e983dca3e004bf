/**
 * The `quarry` command line: a thin shell over the library core. Every command takes `--store` and `--json`;
 * errors print what was wrong and exit with the code from the error table (src/errors.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type Principal, TRUSTED_LOCAL, userPrincipal } from '../access/principal.js';
import type { QuarryConfigInput } from '../config/config.js';
import { describeError, isQuarryError, QuarryError } from '../errors.js';
import type { IngestReport } from '../ingest/ingest.js';
import type { ProgressEvent } from '../observability/progress.js';
import type { Quarry, QuarryStats, SearchOptions } from '../pipeline/quarry.js';
import type { RerankerName } from '../rerank/create.js';
import type { Answer, Degradation, QueryRewrite, TraceReport } from '../types.js';
import { registerMcpCommand } from './mcp.js';
import { registerServerCommands } from './serve.js';

// The library core, evaluation and progress bars are imported by the commands that use them, not here, so
// `quarry --version` and `--help` start in a few tens of milliseconds and each command loads only what it runs.
const loadProgress = () => import('./progress.js');

const PARTIAL_INGEST_EXIT = 6;

interface CommonOpts {
  store?: string;
  config?: string;
  json?: boolean;
}

interface Range {
  min?: number;
  max?: number;
  /** The value must be greater than `min`, not equal to it. */
  exclusiveMin?: boolean;
}

/** "an integer ≥ 1": the range an option accepts, in words. */
function describeRange(kind: string, r: Range): string {
  const parts: string[] = [];
  if (r.min !== undefined) parts.push(`${r.exclusiveMin ? '>' : '≥'} ${r.min}`);
  if (r.max !== undefined) parts.push(`≤ ${r.max}`);
  return `${kind}${parts.length > 0 ? ` ${parts.join(' and ')}` : ''}`;
}

function checked(name: string, kind: 'an integer' | 'a number', r: Range) {
  return (v: string): number => {
    const n = Number(v);
    const ok =
      v.trim() !== '' &&
      (kind === 'an integer' ? Number.isInteger(n) : Number.isFinite(n)) &&
      (r.min === undefined || (r.exclusiveMin ? n > r.min : n >= r.min)) &&
      (r.max === undefined || n <= r.max);
    if (!ok) throw new InvalidArgumentError(`${name} must be ${describeRange(kind, r)}, got "${v}"`);
    return n;
  };
}

/** An integer option within `r` (out-of-range values are errors naming the option, never ignored). */
function int(name: string, r: Range = {}) {
  return checked(name, 'an integer', r);
}

/** A finite number option within `r`. */
function num(name: string, r: Range = {}) {
  return checked(name, 'a number', r);
}

function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function parseJsonOption(name: string, v: string | undefined): unknown {
  if (v === undefined) return undefined;
  try {
    return JSON.parse(v) as unknown;
  } catch (e) {
    throw new QuarryError(
      name === '--filter' ? 'INVALID_FILTER' : 'INVALID_ARGUMENT',
      `${name} is not valid JSON: ${(e as Error).message}`,
    );
  }
}

/** One stderr line per stage that ran in a reduced form, so a degraded result is never silent. */
function warnDegraded(err: NodeJS.WritableStream, degraded: readonly Degradation[]): void {
  for (const d of degraded) print(err, `warning: ${d.stage} degraded: ${d.reason}`);
}

/** Typo correction changed what was searched: say so, and how to search the words as written. */
function rewriteNotice(r: QueryRewrite): string {
  return `searched for "${r.searched}" instead of "${r.original}" (--no-typos searches the words as written)`;
}

function print(out: NodeJS.WritableStream, text: string): void {
  out.write(text.endsWith('\n') ? text : `${text}\n`);
}

function formatTrace(t: TraceReport): string {
  const lines = [`trace: ${t.totalMs.toFixed(2)} ms total`];
  for (const s of t.stages)
    lines.push(
      `  ${s.stage.padEnd(18)} ${s.durationMs.toFixed(3).padStart(9)} ms  ${JSON.stringify(s.detail)}`,
    );
  return lines.join('\n');
}

function formatIngest(r: IngestReport): string {
  const lines = [
    `ingested ${r.files} file(s) in ${(r.durationMs / 1000).toFixed(2)} s: ` +
      `${r.added} added, ${r.updated} updated, ${r.unchanged} unchanged, ${r.removed} removed, ${r.failed} failed ` +
      `(${r.chunks} chunks written)`,
  ];
  for (const e of r.errors)
    lines.push(`  error ${e.code}: ${e.path}${e.record ? ` [${e.record}]` : ''}: ${e.message}`);
  for (const s of r.skipped ?? []) lines.push(`  skipped ${s.path}: ${s.reason}`);
  if (r.blankLines) lines.push(`  ${r.blankLines} blank JSONL line(s) skipped`);
  return lines.join('\n');
}

function formatAnswer(a: Answer, withText = true): string {
  const lines = withText ? [a.text, ''] : [''];
  if (a.citations.length > 0) {
    lines.push('Sources:');
    const byMarker = new Map<number, (typeof a.citations)[number]>();
    for (const c of a.citations) if (!byMarker.has(c.marker)) byMarker.set(c.marker, c);
    for (const [m, c] of byMarker) {
      const section = c.sectionPath.length > 0 ? ` › ${c.sectionPath.join(' › ')}` : '';
      lines.push(
        `  [${m}] ${c.title || c.docId} — ${c.source}${section} (chunk ${c.chunkId}, chars ${c.start}–${c.end})`,
      );
    }
  }
  lines.push(`confidence ${a.confidence.toFixed(2)}${a.abstained ? ' (abstained)' : ''}`);
  if (a.validation !== undefined && a.validation.unsupported.length > 0)
    lines.push(
      `unsupported (${a.validation.policy === 'remove' ? 'removed' : 'flagged'}): ${a.validation.unsupported.map((u) => JSON.stringify(u.text)).join(', ')}`,
    );
  if (a.fallback !== undefined)
    lines.push(`answered by the extractive fallback: ${a.fallback.from} failed (${a.fallback.reason})`);
  if (a.usage !== undefined && a.usage.calls > 0) {
    const u = a.usage;
    const cost =
      u.costUsd !== undefined
        ? `, $${u.costUsd.toFixed(6)}`
        : `, cost unknown (no price for ${u.unpricedModels?.join(', ')})`;
    const parts = u.byComponent.map((c) => `${c.component} ${c.inputTokens}/${c.outputTokens}`).join(', ');
    lines.push(
      `tokens ${u.inputTokens} in / ${u.outputTokens} out${cost}${u.estimated ? ' (estimated)' : ''} [${parts}]`,
    );
  }
  return lines.join('\n');
}

/**
 * After a streamed answer that validation changed: which streamed sentences were withdrawn (not supported by
 * the sources), then the validated answer that stands. An empty stream (the fallback answered) just gets
 * the answer.
 */
function withdrawnNotice(streamed: string, a: Answer): string {
  if (streamed.trim() === '') return a.text;
  const removed = a.validation?.unsupported.map((u) => u.text) ?? [];
  const lines = ['', ''];
  if (a.abstained) {
    lines.push('[withdrawn after validation: the answer above is not supported by the sources]');
    for (const t of removed) lines.push(`  - ${t}`);
  } else if (removed.length > 0 && a.validation?.policy === 'remove') {
    lines.push(
      `[withdrawn after validation: ${removed.length} sentence(s) above not supported by the sources]`,
    );
    for (const t of removed) lines.push(`  - ${t}`);
  } else lines.push('[changed after validation]');
  lines.push('', 'validated answer:', a.text);
  return lines.join('\n');
}

/** The version in Quarry's package.json (two folders up from both src/cli and dist/cli). */
function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function buildProgram(io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream }): Command {
  const program = new Command('quarry')
    .description('Quarry: ingest documents, search them with BM25, and answer questions with citations.')
    .version(packageVersion(), '-V, --version', 'print the Quarry version')
    // Options after a subcommand belong to it (`eval compare … --html` is compare's, not eval's).
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) });

  const withCommon = (cmd: Command): Command =>
    cmd
      .option('--store <dir>', 'store directory (default: $QUARRY_STORE or ./.quarry)')
      .option('--config <file>', 'JSON configuration (chunking, analyzer, bm25, retrieval, query, answer…)')
      .option('--json', 'print machine-readable JSON');

  withCommon(program.command('ingest').argument('<paths...>', 'files and folders to ingest'))
    .description('ingest files and folders (Markdown, text, HTML, PDF, DOCX, JSON/JSONL records)')
    .option('--id-field <name>', 'record id field (JSON/JSONL)')
    .option('--text-field <name>', 'record text field (JSON/JSONL)')
    .option('--title-field <name>', 'record title field (JSON/JSONL)')
    .option('--metadata-field <name>', 'record metadata object field (JSON/JSONL)')
    .option('--tags <list>', 'comma-separated tags added to every document', list)
    .option('--access-groups <list>', 'comma-separated access groups for every document', list)
    .option('--no-prune', 'keep stored documents whose files disappeared from an ingested folder')
    .option(
      '--follow-symlinks',
      'follow symbolic links inside ingested folders (default: skip them and list them as skipped)',
    )
    .option('--progress', PROGRESS_HELP)
    .option(
      '--chunk-tokens <n>',
      'maximum tokens per chunk (new stores)',
      int('--chunk-tokens', { min: 16, max: 8192 }),
    )
    .option(
      '--overlap-tokens <n>',
      'overlap tokens between chunks',
      int('--overlap-tokens', { min: 0, max: 1024 }),
    )
    .action(async (paths: string[], o: CommonOpts & Record<string, unknown>) => {
      const q = await openStore(
        o,
        {
          chunking: {
            ...(o.chunkTokens !== undefined ? { maxTokens: o.chunkTokens as number } : {}),
            ...(o.overlapTokens !== undefined ? { overlapTokens: o.overlapTokens as number } : {}),
          },
        },
        { create: true },
      );
      try {
        const { createProgressReporter, ingestProgress } = await loadProgress();
        const progress = createProgressReporter(io.err, progressChoice(o));
        const report = await q.ingest(paths, {
          records: {
            ...(o.idField ? { id: o.idField as string } : {}),
            ...(o.textField ? { text: o.textField as string } : {}),
            ...(o.titleField ? { title: o.titleField as string } : {}),
            ...(o.metadataField ? { metadata: o.metadataField as string } : {}),
          },
          tags: o.tags as string[] | undefined,
          accessGroups: o.accessGroups as string[] | undefined,
          prune: o.prune as boolean,
          followSymlinks: o.followSymlinks === true,
          onProgress: ingestProgress(progress),
        });
        progress?.stop();
        print(io.out, o.json ? JSON.stringify(report) : formatIngest(report));
        if (report.failed > 0) process.exitCode = PARTIAL_INGEST_EXIT;
      } finally {
        q.close();
      }
    });

  withPrincipal(withRetrieval(withCommon(program.command('search').argument('<query>', 'search query'))))
    .description('retrieve the top-k chunks for a query')
    .option('-k, --k <n>', 'number of results', int('--k', { min: 1, max: 10_000 }), 10)
    .option('--k1 <x>', 'BM25 k1 for this query', num('--k1', { min: 0, max: 10 }))
    .option('--b <x>', 'BM25 b for this query', num('--b', { min: 0, max: 1 }))
    .action(async (query: string, o: CommonOpts & Record<string, unknown>) => {
      const q = await openStore(o, { ...bm25Overrides(o), query: { typos: o.typos as boolean } });
      try {
        const r = await q.search(query, { k: o.k as number, ...retrievalRequest(o, q) });
        warnDegraded(io.err, r.degraded);
        if (o.json) {
          print(io.out, JSON.stringify(r));
          return;
        }
        if (r.rewrite !== undefined) print(io.out, rewriteNotice(r.rewrite));
        if (r.hits.length === 0) print(io.out, 'no results');
        for (const h of r.hits) {
          const section = h.chunk.sectionPath.length > 0 ? ` › ${h.chunk.sectionPath.join(' › ')}` : '';
          const snippet = h.chunk.text.replace(/\s+/g, ' ').slice(0, 200);
          print(
            io.out,
            `${h.rank}. ${h.document.title || h.document.id} — ${h.document.source}${section}  (score ${h.score.toFixed(3)}, chunk ${h.chunk.id})\n   ${snippet}`,
          );
        }
        if (r.trace) print(io.err, formatTrace(r.trace));
      } finally {
        q.close();
      }
    });

  withPrincipal(
    withRetrieval(withCommon(program.command('ask').argument('[question]', 'question to answer'))),
  )
    .description('answer a question from the indexed documents, with citations')
    .option('-k, --k <n>', 'chunks to retrieve', int('--k', { min: 1, max: 10_000 }), 10)
    .option(
      '--batch <file>',
      'answer every question of a JSONL file ({"id","question","filter","k","groups"} per line)',
    )
    .option('--out <file>', 'with --batch: write the answers as JSONL here (default: standard output)')
    .option(
      '--stream',
      'with an LLM: print the answer as it is written, then mark what validation withdrew (default on a terminal)',
    )
    .option(
      '--no-stream',
      'with an LLM: print only the validated answer (default when stdout is not a terminal)',
    )
    .option(
      '--concurrency <n>',
      'with --batch: questions answered at once',
      int('--concurrency', { min: 1, max: 64 }),
      4,
    )
    .action(async (question: string | undefined, o: CommonOpts & Record<string, unknown>) => {
      if ((question === undefined) === (o.batch === undefined))
        throw new QuarryError('INVALID_ARGUMENT', 'give either a question or --batch <file>, not both');
      const q = await openStore(o, { query: { typos: o.typos as boolean } });
      try {
        if (o.batch !== undefined) {
          await runBatch(q, o, io);
          return;
        }
        const request = { k: o.k as number, ...retrievalRequest(o, q) };
        // Streaming shows text validation may still withdraw: do it only for a reader watching (a terminal,
        // or --stream); a pipe or file gets the validated answer alone.
        const stream = (o.stream as boolean | undefined) ?? (io.out as NodeJS.WriteStream).isTTY === true;
        if (o.json || q.config.llm === undefined || !stream) {
          const a = await q.ask(question!, request);
          // On stderr: stdout carries the answer alone, for pipes.
          if (a.rewrite !== undefined && !o.json) print(io.err, rewriteNotice(a.rewrite));
          warnDegraded(io.err, a.degraded);
          print(io.out, o.json ? JSON.stringify(a) : formatAnswer(a));
          if (a.trace && !o.json) print(io.err, formatTrace(a.trace));
          return;
        }
        // With an LLM: print the answer as it streams; the validated answer's sources and checks follow.
        let streamed = '';
        for await (const e of q.askStream(question!, request)) {
          if (e.type === 'delta') {
            streamed += e.text;
            io.out.write(e.text);
          } else if (e.type === 'reset') {
            io.out.write(
              `\n[the answer stream broke off (${e.reason}); answering from the sources instead]\n`,
            );
            streamed = '';
          } else if (e.type === 'answer') {
            if (e.answer.rewrite !== undefined) print(io.err, rewriteNotice(e.answer.rewrite));
            warnDegraded(io.err, e.answer.degraded);
            // Validation removed sentences or abstained: say what of the streamed text no longer stands.
            if (e.answer.text !== streamed) io.out.write(withdrawnNotice(streamed, e.answer));
            print(io.out, formatAnswer(e.answer, false));
            if (e.answer.trace) print(io.err, formatTrace(e.answer.trace));
          }
        }
      } finally {
        q.close();
      }
    });

  const evalCommand = withCommon(
    program
      .command('eval')
      .enablePositionalOptions()
      .argument('[dataset]', 'BEIR-layout dataset directory, or a golden-set file (.jsonl/.json)'),
  ).description(
    'evaluate retrieval on a BEIR-layout dataset (nDCG@10, Recall@10/100, MRR@10, Hit@5, latency), or answers on a golden set (exact match, F1, citations, faithfulness, relevance, abstention); `quarry eval compare <configA> <configB> <dataset>` compares two configurations',
  );
  evalCommand
    .option('--corpus <path>', 'corpus (directory or file) a golden set is evaluated on')
    .option(
      '--unanswerable <share>',
      'hold out this share of the corpus (every 1/share-th document); questions left without their document must be abstained on',
      num('--unanswerable', { min: 0.001, max: 0.999 }),
    )
    .option('--no-judge', 'score faithfulness with the support scorer even when an LLM is configured')
    .option(
      '--generate <corpus>',
      'draft a golden set from this corpus (LLM when configured, else rule-based)',
    )
    .option('--count <n>', 'with --generate: questions to draft (default 20)', int('--count', { min: 1 }))
    .option('--split <name>', 'qrels split', 'test')
    .option('--progress', PROGRESS_HELP)
    .option('--k1 <x>', 'BM25 k1', num('--k1', { min: 0, max: 10 }))
    .option('--b <x>', 'BM25 b', num('--b', { min: 0, max: 1 }))
    .option(
      '--chunk-tokens <n>',
      'chunk size; default keeps documents whole (up to 8192 tokens)',
      int('--chunk-tokens', { min: 16, max: 8192 }),
    )
    .option('--limit <n>', 'evaluate only the first n judged queries', int('--limit', { min: 1 }))
    .option('--no-typos', 'disable query typo correction (pure BM25 on the analyzed query)')
    .option('--prf', 'expand queries with RM3 pseudo-relevance feedback')
    .addOption(
      new Option('--retriever <name>', 'retriever (default: from config, bm25)').choices([
        'bm25',
        'dense',
        'hybrid',
      ]),
    )
    .option('--ranker <model.json>', 'rerank with this learning-to-rank model (quarry train-ranker output)')
    .addOption(new Option('--reranker <name>', 'reranker (default: from config)').choices(RERANKERS))
    .option('--answers', 'also answer every judged query; adds answer_hit@1 where queries carry gold answers')
    .option(
      '--record [store]',
      'keep the run (report, per-query metrics, worst queries traced) in this store for the web UI dashboard (default: $QUARRY_STORE or ./.quarry)',
    )
    .option('--label <text>', 'label of the recorded run (e.g. the change it measures)')
    .option(
      '--out <file>',
      'write the report (JSON) here, for a later run to use as --baseline; with --generate: the drafted golden set (JSONL)',
    )
    .option('--baseline <report.json>', 'gate against this earlier report (with --max-drop)')
    .option(
      '--max-drop <spec>',
      'largest allowed drop per metric vs --baseline, e.g. ndcg@10=0.01,recall@100=0.02,latency_ms.p95=5; exit 3 when exceeded',
    )
    .option('--html <file>', 'also write a self-contained HTML report (charts, per-query scatter)')
    .action(async (dataset: string | undefined, o: CommonOpts & Record<string, unknown>) => {
      if (typeof o.generate === 'string') {
        if (typeof o.out !== 'string')
          throw new QuarryError('INVALID_ARGUMENT', '--generate needs --out <golden.jsonl>');
        const { generateGoldenSet } = await import('../eval/generate-golden.js');
        const drafted = await generateGoldenSet({
          corpus: o.generate,
          out: o.out,
          config: readConfigFile(o.config),
          ...(o.count === undefined ? {} : { count: o.count as number }),
        });
        print(
          io.out,
          o.json
            ? JSON.stringify({ ...drafted, items: drafted.items.length })
            : [
                `drafted ${drafted.items.length} questions (${drafted.drafter}) into ${drafted.file}`,
                ...(drafted.llmRejected > 0
                  ? [
                      `${drafted.llmRejected} LLM drafts rejected (${drafted.firstLlmError}); rule-based drafts kept`,
                    ]
                  : []),
                `review them (edit, delete, remove "draft"), then: quarry eval ${drafted.file} --corpus ${o.generate}`,
              ].join('\n'),
        );
        return;
      }
      if (dataset === undefined)
        throw new QuarryError(
          'INVALID_ARGUMENT',
          'give a dataset directory or golden set, or --generate <corpus>',
        );
      const gateSpec = await gateOptions(o);
      const { createProgressReporter, queryProgress } = await loadProgress();
      const progress = createProgressReporter(io.err, progressChoice(o));
      const { runEval } = await import('../eval/run-eval.js');
      const report = await runEval({
        dataset,
        config: readConfigFile(o.config),
        split: o.split as string,
        store: o.store,
        k1: o.k1 as number | undefined,
        b: o.b as number | undefined,
        chunkTokens: o.chunkTokens as number | undefined,
        limit: o.limit as number | undefined,
        ...(o.typos === false ? { typos: false } : {}),
        ...(o.prf === true ? { prf: true } : {}),
        retriever: o.retriever as 'bm25' | 'dense' | 'hybrid' | undefined,
        ...(o.ranker === undefined ? {} : { ranker: o.ranker as string }),
        ...(o.reranker === undefined ? {} : { reranker: o.reranker as RerankerName }),
        ...(o.answers === true ? { answers: true } : {}),
        ...(typeof o.corpus === 'string' ? { corpus: o.corpus } : {}),
        ...(o.unanswerable === undefined ? {} : { unanswerable: o.unanswerable as number }),
        ...(o.judge === false ? { judge: false } : {}),
        ...(o.record === undefined
          ? {}
          : {
              record: path.resolve(
                typeof o.record === 'string' ? o.record : (process.env.QUARRY_STORE ?? '.quarry'),
              ),
            }),
        ...(typeof o.label === 'string' ? { label: o.label } : {}),
        ...(o.html === undefined ? {} : { perQuery: true }),
        ...(progress === undefined ? {} : { onProgress: (p: ProgressEvent) => progress.update(p) }),
        onQueries: queryProgress(progress),
      });
      progress?.stop();
      const { checkGate, formatGate, GATE_FAILED_EXIT } = await import('../eval/gate.js');
      const { ANSWER_METRICS } = await import('../eval/answers.js');
      const gate =
        gateSpec === undefined ? undefined : checkGate(gateSpec.baseline, report, gateSpec.tolerances);
      // The per-query figures (asked for by --html) stay out of the saved report: a baseline needs the means.
      const { perQuery: _perQuery, ...saved } = report;
      if (typeof o.out === 'string') writeFileAtomic(o.out, `${JSON.stringify(saved, null, 2)}\n`);
      if (typeof o.html === 'string') {
        const { renderEvalHtml } = await import('../eval/report-html.js');
        writeFileAtomic(o.html, renderEvalHtml(report, gate));
      }
      if (gate !== undefined && !gate.passed) process.exitCode = GATE_FAILED_EXIT;
      if (o.json) {
        print(io.out, JSON.stringify(gate === undefined ? saved : { ...saved, gate }));
        return;
      }
      if (gate !== undefined)
        print(io.err, formatGate(gate, { baseline: String(o.baseline), current: 'this run' }));
      const m = report.metrics;
      print(
        io.out,
        [
          `${report.dataset} (${report.split}): ${report.queries} queries over ${report.corpus.documents} documents / ${report.corpus.chunks} chunks`,
          `retriever ${report.retriever}${report.dense ? ` (dense: ${report.dense.model}, ${report.dense.index}, built in ${report.dense.buildMs} ms)` : ''}, k1=${report.bm25.k1} b=${report.bm25.b}, chunking: ${report.chunking.description}`,
          ...(m['ndcg@10'] === undefined
            ? []
            : [
                `nDCG@10 ${m['ndcg@10'].toFixed(4)}  Recall@10 ${m['recall@10']!.toFixed(4)}  Recall@100 ${m['recall@100']!.toFixed(4)}  MRR@10 ${m['mrr@10']!.toFixed(4)}  Hit@5 ${m['hit@5']!.toFixed(4)}`,
              ]),
          `latency ms: p50 ${report.latency_ms.p50.toFixed(3)}  p95 ${report.latency_ms.p95.toFixed(3)}  p99 ${report.latency_ms.p99.toFixed(3)}`,
          ...(report.query.typos ? [`typo correction rewrote ${report.query.rewritten} queries`] : []),
          ...(report.recorded
            ? [`recorded as run ${report.recorded.runId} in ${report.recorded.store}`]
            : []),
          ...(report.rerank
            ? [
                `reranked by ${report.rerank.reranker} (${report.rerank.model ?? ''}, pool ${report.rerank.pool}): ${JSON.stringify(report.rerank.status)}`,
              ]
            : []),
          ...(report.answers
            ? [
                `answers (${report.answers.answerer}): ${report.answers.questions} questions, ${report.answers.abstained} abstained` +
                  (m['answer_hit@1'] !== undefined ? `, answer_hit@1 ${m['answer_hit@1'].toFixed(4)}` : '') +
                  `; stage p50/p95 ms ${Object.entries(report.answers.stages_ms)
                    .map(([k, v]) => `${k} ${v.p50.toFixed(2)}/${v.p95.toFixed(2)}`)
                    .join(', ')}`,
                answerMetricsLine(m, ANSWER_METRICS),
              ]
            : []),
          ...(report.unanswerable
            ? [
                `unanswerable: ${report.unanswerable.questions} questions (${report.unanswerable.heldOutDocuments} of ${report.unanswerable.documents} documents held out: ${report.unanswerable.selection})`,
              ]
            : []),
          ...(report.answers?.faithfulness?.judge
            ? [
                `faithfulness judge ${report.answers.faithfulness.judge.model} (${report.answers.faithfulness.judge.promptVersion}): ${report.answers.faithfulness.judge.judged} judged, ${report.answers.faithfulness.judge.errors} errors${report.answers.faithfulness.judge.firstError ? ` (${report.answers.faithfulness.judge.firstError})` : ''}, agreement with the support scorer ${report.answers.faithfulness.judge.agreement?.toFixed(3) ?? 'n/a'}`,
              ]
            : []),
        ].join('\n'),
      );
    });

  evalCommand
    .command('compare')
    .argument('<configA>', 'JSON configuration of A (the current one)')
    .argument('<configB>', 'JSON configuration of B (the candidate)')
    .argument('<dataset>', 'BEIR-layout dataset directory')
    .description(
      'evaluate two configurations on the same queries: per-metric B − A with a 95% paired-bootstrap interval and a paired randomisation p-value, and the queries that changed most; with --max-drop, exit 3 when B drops beyond it (the drift check before a model, chunking or ranker swap)',
    )
    .option('--split <name>', 'qrels split', 'test')
    .option('--limit <n>', 'compare on the first n judged queries', int('--limit', { min: 1 }))
    .option(
      '--iterations <n>',
      'bootstrap resamples and permutations',
      int('--iterations', { min: 100 }),
      10_000,
    )
    .option('--seed <n>', 'seed of the resampling', int('--seed', { min: 0 }), 42)
    .option(
      '--max-drop <spec>',
      'largest allowed drop of B vs A per metric, e.g. ndcg@10=0.01; exit 3 when exceeded',
    )
    .option('--out <report.json>', 'write the comparison (JSON)')
    .option('--html <file>', 'also write a self-contained HTML report')
    .option('--progress', PROGRESS_HELP)
    .option('--json', 'print machine-readable JSON')
    .action(async (configA: string, configB: string, dataset: string, o: Record<string, unknown>) => {
      const { parseTolerances, formatGate, GATE_FAILED_EXIT } = await import('../eval/gate.js');
      const tolerances = typeof o.maxDrop === 'string' ? parseTolerances(o.maxDrop) : undefined;
      const label = (f: string) => path.basename(f).replace(/\.json$/i, '');
      const [la, lb] = label(configA) === label(configB) ? ['A', 'B'] : [label(configA), label(configB)];
      const { createProgressReporter, queryProgress } = await loadProgress();
      const progress = createProgressReporter(io.err, progressChoice(o));
      const { runCompare } = await import('../eval/compare.js');
      const report = await runCompare({
        dataset,
        a: { label: la, config: readConfigFile(configA) },
        b: { label: lb, config: readConfigFile(configB) },
        split: o.split as string,
        ...(o.limit === undefined ? {} : { limit: o.limit as number }),
        iterations: o.iterations as number,
        seed: o.seed as number,
        ...(tolerances === undefined ? {} : { maxDrop: tolerances }),
        ...(progress === undefined ? {} : { onProgress: (p: ProgressEvent) => progress.update(p) }),
        onQueries: queryProgress(progress),
      });
      progress?.stop();
      if (typeof o.out === 'string') {
        // Each side's means and settings; the per-query figures went into the statistics and the HTML.
        const side = ({ label, report: { perQuery: _p, ...r } }: typeof report.a) => ({ label, report: r });
        writeFileAtomic(
          o.out,
          `${JSON.stringify({ ...report, a: side(report.a), b: side(report.b) }, null, 2)}\n`,
        );
      }
      if (typeof o.html === 'string') {
        const { renderCompareHtml } = await import('../eval/report-html.js');
        writeFileAtomic(o.html, renderCompareHtml(report));
      }
      if (report.gate !== undefined && !report.gate.passed) process.exitCode = GATE_FAILED_EXIT;
      if (o.json === true) {
        const { a, b, ...rest } = report;
        print(io.out, JSON.stringify({ ...rest, a: { label: a.label }, b: { label: b.label } }));
        return;
      }
      const lines = [
        `${report.dataset} (${report.split}): ${report.queries} paired queries, ${la} → ${lb}`,
        `${'metric'.padEnd(14)} ${la.slice(0, 10).padStart(10)} ${lb.slice(0, 10).padStart(10)}   Δ (B−A)   95% CI              p`,
        ...report.metrics.map(
          (m) =>
            `${m.metric.padEnd(14)} ${m.a.toFixed(4).padStart(10)} ${m.b.toFixed(4).padStart(10)}   ${(m.delta >= 0 ? '+' : '') + m.delta.toFixed(4)}   [${m.ci95[0].toFixed(4)}, ${m.ci95[1].toFixed(4)}]   ${m.pValue.toFixed(4)}${m.significant ? ' *' : ''}`,
        ),
        `latency p95 ms: ${report.a.report.latency_ms.p95.toFixed(2)} → ${report.b.report.latency_ms.p95.toFixed(2)}`,
        ...(report.changed.length === 0
          ? ['no query changed its ranking metric']
          : [
              `changed most (${report.changed[0]!.metric}):`,
              ...report.changed.map(
                (c) =>
                  `  ${(c.delta >= 0 ? '+' : '') + c.delta.toFixed(3)}  ${c.queryId}  ${c.query.slice(0, 80)}`,
              ),
            ]),
        `* p < ${report.method.alpha} (paired randomisation, ${report.method.iterations} permutations, seed ${report.method.seed})`,
      ];
      print(io.out, lines.join('\n'));
      if (report.gate !== undefined) print(io.err, formatGate(report.gate, { baseline: la, current: lb }));
    });

  const feedbackCommand = withCommon(
    program
      .command('feedback')
      .enablePositionalOptions()
      .argument('<query>', 'the question or query the source was shown for'),
  ).description(
    'record whether a document (or one of its chunks) helped answer a query; train-ranker learns from it; `quarry feedback export` writes the recorded votes as training data',
  );
  withCommon(feedbackCommand.command('export'))
    .description(
      'export recorded feedback: votes as JSONL for train-ranker --feedback (with the query id of votes given through the server) and candidate golden-set items for review',
    )
    .option('--out <file>', 'votes JSONL (default: stdout)')
    .option(
      '--golden <file>',
      'also write candidate golden-set items (queries with the documents voted helpful)',
    )
    .action(async (o: CommonOpts & Record<string, unknown>) => {
      const q = await openStore(o);
      try {
        const { exportFeedback } = await import('../eval/feedback-export.js');
        const x = exportFeedback(q);
        const jsonl = (rows: object[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');
        if (typeof o.golden === 'string') writeFileAtomic(o.golden, jsonl(x.golden));
        if (typeof o.out === 'string') writeFileAtomic(o.out, jsonl(x.feedback));
        else io.out.write(jsonl(x.feedback));
        const summary = `exported ${x.feedback.length} vote(s)${typeof o.golden === 'string' ? `, ${x.golden.length} candidate golden item(s)` : ''}${x.skipped > 0 ? `; ${x.skipped} vote(s) on deleted documents left out` : ''}`;
        print(io.err, summary);
      } finally {
        q.close();
      }
    });
  feedbackCommand
    // Checked in the action, not by commander: a required option here would also be demanded of `export`.
    .option('--doc <id>', 'document id (as shown by search, ask and docs); required')
    .option('--chunk <id>', 'chunk id within that document', int('--chunk', { min: 0 }))
    .option('--helpful', 'the source helped')
    .option('--not-helpful', 'the source did not help')
    .action(async (query: string, o: CommonOpts & Record<string, unknown>) => {
      if (typeof o.doc !== 'string')
        throw new QuarryError('INVALID_ARGUMENT', "required option '--doc <id>' not specified");
      if ((o.helpful === true) === (o.notHelpful === true))
        throw new QuarryError('INVALID_ARGUMENT', 'give exactly one of --helpful or --not-helpful');
      const q = await openStore(o);
      try {
        const entry = q.recordFeedback(
          {
            query,
            docId: o.doc as string,
            ...(o.chunk === undefined ? {} : { chunkId: o.chunk as number }),
            helpful: o.helpful === true,
          },
          { principal: TRUSTED_LOCAL },
        );
        print(
          io.out,
          o.json
            ? JSON.stringify(entry)
            : `recorded: ${entry.helpful ? 'helpful' : 'not helpful'} — ${entry.docId}`,
        );
      } finally {
        q.close();
      }
    });

  withCommon(
    program
      .command('train-ranker')
      .argument('[dataset]', 'BEIR-layout dataset directory (optional with --from-feedback)'),
  )
    .description('learn learning-to-rank weights from judged queries (qrels, golden sets, feedback)')
    .requiredOption('--out <model.json>', 'where to write the model')
    .option('--progress', PROGRESS_HELP)
    .option('--split <name>', 'judged split to train on (never the split you evaluate on)', 'train')
    .addOption(
      new Option('--retriever <name>', 'first stage whose pool is reranked')
        .choices(['bm25', 'dense', 'hybrid'])
        .default('hybrid'),
    )
    .option('--depth <n>', 'pool size per query', int('--depth', { min: 1, max: 10_000 }), 100)
    .option('--golden <file>', 'extra judgments: JSONL {"query","relevant":{"<docId>":grade}}')
    .option('--feedback <file>', 'extra judgments: JSONL {"query","docId","helpful":true|false}')
    .option('--from-feedback', 'also learn from the feedback recorded in --store (quarry feedback)')
    .addOption(
      new Option('--method <name>', 'training method').choices(['lambdarank', 'ranknet', 'ranknet+ca']),
    )
    .option('--seed <n>', 'random seed (training is deterministic for a seed)', int('--seed', { min: 0 }))
    .action(async (dataset: string | undefined, o: CommonOpts & Record<string, unknown>) => {
      const { createProgressReporter, queryProgress } = await loadProgress();
      const progress = createProgressReporter(io.err, progressChoice(o));
      const { trainRanker } = await import('../eval/train-ranker.js');
      const report = await trainRanker({
        ...(dataset === undefined ? {} : { dataset }),
        ...(o.fromFeedback === true ? { fromFeedback: true } : {}),
        out: o.out as string,
        split: o.split as string,
        retriever: o.retriever as 'bm25' | 'dense' | 'hybrid',
        depth: o.depth as number,
        ...(o.store === undefined ? {} : { store: o.store }),
        ...(o.golden === undefined ? {} : { golden: o.golden as string }),
        ...(o.feedback === undefined ? {} : { feedback: o.feedback as string }),
        train: {
          ...(o.method === undefined ? {} : { method: o.method as 'lambdarank' }),
          ...(o.seed === undefined ? {} : { seed: o.seed as number }),
        },
        config: readConfigFile(o.config),
        onQueries: queryProgress(progress),
      });
      progress?.stop();
      const { model: _model, ...summary } = report;
      if (o.json) {
        print(io.out, JSON.stringify(summary));
        return;
      }
      print(
        io.out,
        `trained on ${report.dataset === null ? 'recorded feedback' : `${report.dataset} (${report.split})`}: ${report.trainedQueries} of ${report.queries} queries, ${report.pairs} pairs; ` +
          `train nDCG@10 ${report.ndcgBefore.toFixed(4)} → ${report.ndcgAfter.toFixed(4)}; model written to ${report.out}`,
      );
    });

  withCommon(program.command('stats'))
    .description('store statistics')
    .action(async (o: CommonOpts) => {
      const q = await openStore(o);
      try {
        const s = q.stats();
        if (o.json) {
          print(io.out, JSON.stringify(s));
          return;
        }
        print(
          io.out,
          [
            `store ${s.storeDir}`,
            `documents ${s.documents}, sections ${s.sections}, chunks ${s.chunks}, tokens ${s.tokens}, characters ${s.characters}`,
            `on disk ${(s.bytesOnDisk / 1024 / 1024).toFixed(2)} MiB, schema v${s.schemaVersion}, index version ${s.indexVersion}`,
            `BM25 index: ${s.index.chunks} chunks, ${(s.index.memoryBytes / 1024 / 1024).toFixed(2)} MiB in memory, loaded from ${s.index.loadedFrom}`,
            ...s.dense.map(
              (d) =>
                `dense "${d.name}" (${d.provider}${d.model ? `, ${d.model}` : ''}): ${d.vectors} vectors, ${d.index}, ${DENSE_STATE[d.state](d.memoryBytes)}`,
            ),
          ].join('\n'),
        );
      } finally {
        q.close();
      }
    });

  withCommon(program.command('check'))
    .description('check the store and every index against it; exit 5 when a problem is found')
    .option(
      '--repair',
      'rebuild the derived indexes (BM25, dense, catalog) from the store, remove orphan chunks, check again',
    )
    .action(async (o: CommonOpts & { repair?: boolean }) => {
      const { checkStoreDir, CHECK_FAILED_EXIT } = await import('../pipeline/check.js');
      const { resolveStoreDir } = await import('../pipeline/quarry.js');
      const config = readConfigFile(o.config);
      // Checked as it is on disk first: opening the store for a repair rebuilds a stale or damaged snapshot.
      let report = checkStoreDir(resolveStoreDir(o.store), config);
      if (o.repair === true) {
        const before = report.findings;
        const q = await openStore(o);
        try {
          report = { ...q.check({ repair: true }), before };
        } finally {
          q.close();
        }
      }
      if (!report.ok) process.exitCode = CHECK_FAILED_EXIT;
      if (o.json) {
        print(io.out, JSON.stringify(report));
        return;
      }
      const line = (f: (typeof report.findings)[number]) =>
        `${f.severity} ${f.code} (${f.count}): ${f.message}${f.examples === undefined || f.examples.length === 0 ? '' : ` [${f.examples.join(', ')}]`}`;
      const c = report.counts;
      print(
        io.out,
        [
          ...(report.before === undefined
            ? []
            : ['before repair:', ...report.before.map((f) => `  ${line(f)}`)]),
          ...report.repaired.map((r) => `repaired: ${r}`),
          ...report.findings.map(line),
          `${report.ok ? 'ok' : 'FAILED'}: ${report.findings.filter((f) => f.severity === 'error').length} problems, ` +
            `${report.findings.filter((f) => f.severity === 'warning').length} warnings; ${c.documents} documents, ${c.chunks} chunks, ` +
            `BM25 snapshot ${c.bm25Snapshot ?? 'none'}, dense snapshot ${c.denseSnapshot ?? 'none'}`,
        ].join('\n'),
      );
    });

  withPrincipal(withCommon(program.command('docs')))
    .description('list documents (or show one with --id)')
    .option('--id <id>', 'show one document with its text')
    .option('--limit <n>', 'maximum documents to list', int('--limit', { min: 1 }), 100)
    .option('--offset <n>', 'skip this many documents', int('--offset', { min: 0 }), 0)
    .action(async (o: CommonOpts & Record<string, unknown>) => {
      const q = await openStore(o);
      try {
        if (typeof o.id === 'string') {
          const d = q.getDocument(o.id, { principal: cliPrincipal(o) });
          if (d === undefined)
            throw new QuarryError('NOT_FOUND', `no document with id ${o.id}`, { id: o.id });
          print(
            io.out,
            o.json
              ? JSON.stringify(d)
              : `${d.id} (${d.meta.doc_type}, v${d.meta.version}) ${d.meta.title}\n\n${d.text}`,
          );
          return;
        }
        const docs = q.listDocuments({
          limit: o.limit as number,
          offset: o.offset as number,
          principal: cliPrincipal(o),
        });
        if (o.json) {
          print(io.out, JSON.stringify(docs));
          return;
        }
        for (const d of docs) {
          print(
            io.out,
            `${d.id}  ${d.meta.doc_type}  v${d.meta.version}  ${d.chunkCount} chunks  ${d.meta.title}`,
          );
        }
      } finally {
        q.close();
      }
    });

  withCommon(program.command('delete').argument('[ids...]', 'document ids to delete'))
    .description('delete documents by id, or everything from a source path with --source')
    .option('--source <path>', 'delete every document whose source is this path or lies under it')
    .action(async (ids: string[], o: CommonOpts & Record<string, unknown>) => {
      if (ids.length === 0 && typeof o.source !== 'string') {
        throw new QuarryError('INVALID_ARGUMENT', 'give document ids or --source <path>');
      }
      const q = await openStore(o);
      try {
        const deleted = [
          ...q.deleteDocuments(ids),
          ...(typeof o.source === 'string' ? q.deleteBySource(o.source) : []),
        ];
        const missing = ids.filter((id) => !deleted.includes(id));
        if (o.json) print(io.out, JSON.stringify({ deleted, missing }));
        else {
          print(
            io.out,
            `deleted ${deleted.length} document(s)${deleted.length ? `: ${deleted.join(', ')}` : ''}`,
          );
          if (missing.length) print(io.err, `not found: ${missing.join(', ')}`);
        }
        if (deleted.length === 0 || missing.length > 0) process.exitCode = 4;
      } finally {
        q.close();
      }
    });

  const shared = {
    storeDir: (store?: string) => path.resolve(store ?? process.env.QUARRY_STORE ?? '.quarry'),
    pipelineConfig: async (file?: string) => readConfigFile(file) as Record<string, unknown>,
    version: packageVersion(),
  };
  registerServerCommands(program, io, shared);
  registerMcpCommand(program, io, { ...shared, withPrincipal, cliPrincipal });
  return program;
}

/** `ask --batch`: answers as JSONL in input order; a failed question gets an error line, the rest go on. */
async function runBatch(
  q: Quarry,
  o: CommonOpts & Record<string, unknown>,
  io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream },
): Promise<void> {
  const file = o.batch as string;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new QuarryError('INVALID_ARGUMENT', `cannot read --batch ${file}: ${(e as Error).message}`, {
      file,
    });
  }
  const { askBatch, parseBatchJsonl } = await import('../pipeline/batch.js');
  const questions = parseBatchJsonl(text, file);
  // Each question's own filter applies; its `groups` narrow the command's principal to those groups.
  const { filter: _f, ...request } = retrievalRequest(o, q);
  const out = o.out === undefined ? io.out : fs.createWriteStream(o.out as string);
  let failed = 0;
  let done = 0;
  const t0 = performance.now();
  for await (const r of askBatch(q, questions, { ...request, concurrency: o.concurrency as number })) {
    if (r.error !== undefined) failed++;
    done++;
    out.write(`${JSON.stringify(r)}\n`);
  }
  if (out !== io.out) await new Promise<void>((resolve) => (out as fs.WriteStream).end(resolve));
  const seconds = (performance.now() - t0) / 1000;
  io.err.write(
    `answered ${done - failed} of ${done} question(s) in ${seconds.toFixed(2)} s (${(done / Math.max(seconds, 1e-9)).toFixed(1)}/s)${failed ? `, ${failed} failed` : ''}\n`,
  );
  if (failed > 0) process.exitCode = 1;
}

const PROGRESS_HELP = 'show progress on stderr even when it is not a terminal (default: only on a terminal)';

function progressChoice(o: CommonOpts & Record<string, unknown>): { force: boolean; json: boolean } {
  return { force: o.progress === true, json: o.json === true };
}

/** How `stats` words a dense index's state (see DenseIndexSummary). */
const DENSE_STATE: Record<QuarryStats['dense'][number]['state'], (bytes: number) => string> = {
  loaded: (b) => `${(b / 1024 / 1024).toFixed(2)} MiB in memory`,
  'on-disk': () => 'snapshot on disk (loaded on the first dense query)',
  stale: () => 'snapshot out of date (rebuilt on the first dense query)',
  none: () => 'not built yet (built on the first dense query)',
};

/** The answer metrics of an eval report, on one line (the ones the run measured; hit@1 is printed before). */
function answerMetricsLine(m: Record<string, number>, names: readonly string[]): string {
  const elsewhere = new Set(['answer_hit@1', 'confidence', 'tokens_per_query', 'cost_usd_per_query']);
  return names
    .filter((n) => !elsewhere.has(n) && m[n] !== undefined)
    .map((n) => `${n} ${m[n]!.toFixed(4)}`)
    .join('  ');
}

/** Options search and ask share: what to retrieve with, for whom, and how to show it. */
function withRetrieval(cmd: Command): Command {
  return cmd
    .option('--filter <json>', 'metadata filter, e.g. \'{"tags":{"$in":["guide"]}}\'')
    .option('--no-typos', 'disable query typo correction')
    .option(
      '--half-life <days>',
      'decay scores by document age with this half-life',
      num('--half-life', { min: 0, exclusiveMin: true }),
    )
    .option(
      '--latest-by <field>',
      'among documents with the same value of this field, return only the newest',
    )
    .addOption(
      new Option('--retriever <name>', 'retriever (default: from config, bm25)').choices([
        'bm25',
        'dense',
        'hybrid',
      ]),
    )
    .addOption(new Option('--reranker <name>', 'reranker (default: from config)').choices(RERANKERS))
    .option('--trace', 'print a per-stage trace');
}

const RERANKERS: RerankerName[] = ['none', 'ltr', 'onnx', 'http', 'llm'];

/** Who the command reads as: the store's owner by default, or the user these options describe. */
function withPrincipal(cmd: Command): Command {
  return cmd
    .option('--user <id>', 'read as this user id (matched against access_users); default: the store owner')
    .option('--groups <list>', 'read as a user in these comma-separated access groups', list)
    .option(
      '--clearance <n>',
      'read as a user with this clearance (documents above their security_level are hidden; default 0)',
      int('--clearance', { min: 0 }),
    );
}

/**
 * The CLI is the store's local owner and reads everything (TRUSTED_LOCAL), unless `--user`, `--groups` or
 * `--clearance` ask to see what that user would see.
 */
function cliPrincipal(o: Record<string, unknown>): Principal {
  if (o.user === undefined && o.groups === undefined && o.clearance === undefined) return TRUSTED_LOCAL;
  return userPrincipal({
    ...(typeof o.user === 'string' ? { userId: o.user } : {}),
    groups: (o.groups as string[] | undefined) ?? [],
    clearance: (o.clearance as number | undefined) ?? 0,
  });
}

function retrievalRequest(o: Record<string, unknown>, q: Quarry): Omit<SearchOptions, 'k'> {
  const freshness =
    o.halfLife !== undefined || o.latestBy !== undefined
      ? {
          ...q.config.retrieval.freshness,
          ...(o.halfLife !== undefined ? { halfLifeDays: o.halfLife as number } : {}),
          ...(o.latestBy !== undefined ? { latestBy: o.latestBy as string } : {}),
        }
      : undefined;
  return {
    filter: parseJsonOption('--filter', o.filter as string | undefined),
    principal: cliPrincipal(o),
    trace: o.trace === true,
    retriever: o.retriever as SearchOptions['retriever'],
    ...(o.reranker === undefined ? {} : { reranker: o.reranker as RerankerName }),
    ...(freshness === undefined ? {} : { freshness }),
  };
}

function bm25Overrides(o: Record<string, unknown>) {
  return {
    bm25: {
      ...(o.k1 !== undefined ? { k1: o.k1 as number } : {}),
      ...(o.b !== undefined ? { b: o.b as number } : {}),
    },
  };
}

/**
 * Open the `--store` store. Only ingest creates one (`create: true`); every other command on a path without a
 * store fails with STORE_NOT_FOUND (exit 4) naming the path, rather than answering from an empty new store.
 */
async function openStore(
  o: CommonOpts,
  overrides: QuarryConfigInput = {},
  { create = false }: { create?: boolean } = {},
): Promise<Quarry> {
  const config = mergeConfig(readConfigFile(o.config), overrides);
  const { Quarry } = await import('../pipeline/quarry.js');
  return Quarry.open({ store: o.store, config, create });
}

/** `--config <file>`: a JSON file with any part of the configuration (see src/config/config.ts). */
function readConfigFile(file: string | undefined): QuarryConfigInput {
  if (file === undefined) return {};
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new QuarryError('INVALID_CONFIG', `cannot read --config ${file}: ${(e as Error).message}`, {
      file,
    });
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new Error('expected a JSON object');
    return parsed as QuarryConfigInput;
  } catch (e) {
    throw new QuarryError(
      'INVALID_CONFIG',
      `--config ${file} is not a JSON object: ${(e as Error).message}`,
      { file },
    );
  }
}

/** Command-line flags override the file, one section at a time. */
function mergeConfig(base: QuarryConfigInput, overrides: QuarryConfigInput): QuarryConfigInput {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    const b = (base as Record<string, unknown>)[k];
    out[k] = b !== null && typeof b === 'object' && v !== null && typeof v === 'object' ? { ...b, ...v } : v;
  }
  return out as QuarryConfigInput;
}

/** Write a file whole or not at all (a report a CI step reads must never be half-written). */
function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new QuarryError('INVALID_ARGUMENT', `cannot write ${file}: ${(e as Error).message}`, { file }, e);
  }
}

/** `--baseline` with `--max-drop`, checked before any work starts (both or neither). */
async function gateOptions(o: Record<string, unknown>) {
  const { parseTolerances, readReport } = await import('../eval/gate.js');
  if (o.maxDrop === undefined && o.baseline === undefined) return undefined;
  if (typeof o.baseline !== 'string')
    throw new QuarryError('INVALID_ARGUMENT', '--max-drop needs --baseline <report.json> to compare against');
  if (typeof o.maxDrop !== 'string')
    throw new QuarryError(
      'INVALID_ARGUMENT',
      '--baseline needs --max-drop <metric>=<tolerance>,… (e.g. ndcg@10=0.01) saying what may not drop',
    );
  return { baseline: readReport(o.baseline), tolerances: parseTolerances(o.maxDrop) };
}

/**
 * `quarry search x | head -1`: once the reader has closed the pipe, the next write fails with EPIPE, which Node
 * raises as an unhandled 'error' event (a stack trace). The reader wanted no more output: stop at once, with
 * success, as Unix tools do. A closed stderr is ignored (there is nowhere left to report anything).
 */
function exitQuietlyWhenReaderCloses(out: NodeJS.WritableStream, err: NodeJS.WritableStream): void {
  const closed = (e: NodeJS.ErrnoException) => e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED';
  if (out.listenerCount('error') === 0)
    out.on('error', (e: NodeJS.ErrnoException) => {
      if (!closed(e)) throw e;
      process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    });
  if (err !== out && err.listenerCount('error') === 0)
    err.on('error', (e: NodeJS.ErrnoException) => {
      if (!closed(e)) throw e;
    });
}

/** Run the CLI; returns the exit code (never calls process.exit, so tests can run it in-process). */
export async function main(
  argv: string[],
  io = { out: process.stdout, err: process.stderr },
): Promise<number> {
  exitQuietlyWhenReaderCloses(io.out, io.err);
  const program = buildProgram(io);
  const wantsJson = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? 0 : 2;
    }
    const d = describeError(e);
    if (wantsJson) io.out.write(`${JSON.stringify({ error: isQuarryError(e) ? e.toJSON() : d })}\n`);
    io.err.write(`quarry: ${d.message}\n`);
    return isQuarryError(e) ? e.exitCode : 1;
  }
}

/**
 * Progress on stderr for long ingests, dense index builds and evaluations: a live bar per phase on a terminal;
 * with `--progress` off a terminal (CI logs), a line per phase about once a second and its final counts. Off a
 * terminal and without `--progress`, nothing (scripts read stderr for errors).
 */
import cliProgress from 'cli-progress';
import type { IngestProgress } from '../ingest/ingest.js';
import { ingestProgressEvent } from '../ingest/progress.js';
import type { ProgressEvent } from '../observability/progress.js';

export type { ProgressEvent };

export interface ProgressReporter {
  update(p: ProgressEvent): void;
  /** Finish the current phase (its final counts stay visible). */
  stop(): void;
}

export interface ProgressChoice {
  /** `--progress`: report even when stderr is not a terminal. */
  force?: boolean;
  /** `--json`: report only when forced (stdout is for the JSON; a terminal bar would still be noise). */
  json?: boolean;
}

/** Ingest events as records: a JSONL file of 5,000 records is 5,000 to count, not one file. */
export function ingestProgress(
  progress: ProgressReporter | undefined,
): ((p: IngestProgress) => void) | undefined {
  if (progress === undefined) return undefined;
  return (p) => progress.update(ingestProgressEvent(p));
}

/** An `onQueries(done, total)` callback that shows query progress of an evaluation or training run. */
export function queryProgress(
  progress: ProgressReporter | undefined,
  phase = 'queries',
): (done: number, total: number) => void {
  return (done, total) => progress?.update({ phase, done, total, unit: 'queries' });
}

function describe(p: ProgressEvent, ratePerS: number): string {
  const extra = [
    ...(p.documents === undefined ? [] : [`${p.documents} documents`]),
    ...(p.chunks === undefined ? [] : [`${p.chunks} chunks`]),
  ];
  const what = p.unit === p.phase ? p.phase : `${p.phase} ${p.unit}`;
  return `${what} ${p.done}/${p.total}${extra.length > 0 ? `, ${extra.join(', ')}` : ''}, ${ratePerS.toFixed(0)}/s`;
}

/** A reporter on `stream`, or undefined when progress is not wanted there (see `ProgressChoice`). */
export function createProgressReporter(
  stream: NodeJS.WritableStream,
  choice: ProgressChoice = {},
): ProgressReporter | undefined {
  const tty = (stream as NodeJS.WriteStream).isTTY === true;
  if (choice.force !== true && (choice.json === true || !tty)) return undefined;
  return tty ? barReporter(stream as NodeJS.WriteStream) : lineReporter(stream);
}

const countsKey = (p: ProgressEvent) => `${p.done}/${p.total}/${p.documents}/${p.chunks}`;

function lineReporter(stream: NodeJS.WritableStream): ProgressReporter {
  let phase: { last: ProgressEvent; t0: number; printed: number; printedKey: string } | undefined;
  const rate = (p: ProgressEvent, t0: number) => p.done / Math.max((performance.now() - t0) / 1000, 0.001);
  const print = (p: ProgressEvent) => {
    if (phase === undefined) return;
    phase.printed = performance.now();
    phase.printedKey = countsKey(p);
    stream.write(`${describe(p, rate(p, phase.t0))}\n`);
  };
  const finish = () => {
    // The final counts, unless the last line already showed them.
    if (phase !== undefined && phase.printedKey !== countsKey(phase.last)) print(phase.last);
    phase = undefined;
  };
  return {
    update(p) {
      if (phase !== undefined && phase.last.phase !== p.phase) finish();
      if (phase === undefined) {
        phase = { last: p, t0: performance.now(), printed: 0, printedKey: '' };
        print(p);
        return;
      }
      phase.last = p;
      if (performance.now() - phase.printed >= 1000) print(p);
    },
    stop: finish,
  };
}

function barReporter(stream: NodeJS.WriteStream): ProgressReporter {
  let current: { bar: cliProgress.SingleBar; phase: string; t0: number } | undefined;
  const stop = () => {
    current?.bar.stop();
    current = undefined;
  };
  return {
    update(p) {
      if (current !== undefined && current.phase !== p.phase) stop();
      const payload = (t0: number) => ({
        label: `${p.phase} ${p.unit}`,
        extra: [
          ...(p.documents === undefined ? [] : [`${p.documents} docs`]),
          ...(p.chunks === undefined ? [] : [`${p.chunks} chunks`]),
        ].join(', '),
        rate: (p.done / Math.max((performance.now() - t0) / 1000, 0.001)).toFixed(0),
      });
      if (current === undefined) {
        const bar = new cliProgress.SingleBar(
          {
            stream,
            format: ' {label} |{bar}| {value}/{total} | {extra} | {rate}/s | eta {eta}s',
            hideCursor: true,
            clearOnComplete: false,
          },
          cliProgress.Presets.shades_classic,
        );
        const t0 = performance.now();
        bar.start(Math.max(p.total, 1), p.done, payload(t0));
        current = { bar, phase: p.phase, t0 };
        return;
      }
      current.bar.setTotal(Math.max(p.total, 1));
      current.bar.update(p.done, payload(current.t0));
    },
    stop,
  };
}

/**
 * Progress for long ingests and evaluations: a live bar with counts and rate on a terminal, a line every few
 * seconds otherwise (CI logs), nothing with --json.
 */
import cliProgress from 'cli-progress';

export interface ProgressUpdate {
  filesDone: number;
  filesTotal: number;
  documents: number;
  chunks: number;
  elapsedMs: number;
  label?: string;
}

export interface ProgressReporter {
  update(p: ProgressUpdate): void;
  stop(): void;
}

/** An `onQueries(done, total)` callback that shows query progress of an evaluation or training run on `progress`. */
export function queryProgress(progress: ProgressReporter | undefined): (done: number, total: number) => void {
  return (done, total) =>
    progress?.update({
      filesDone: done,
      filesTotal: total,
      documents: 0,
      chunks: 0,
      elapsedMs: 0,
      label: 'queries',
    });
}

export function createProgressReporter(stream: NodeJS.WritableStream): ProgressReporter {
  const tty = (stream as NodeJS.WriteStream).isTTY === true;
  if (tty) {
    const bar = new cliProgress.SingleBar(
      {
        stream: stream as NodeJS.WriteStream,
        format:
          ' {label} |{bar}| {value}/{total} | {documents} docs, {chunks} chunks | {rate}/s | eta {eta}s',
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    let t0 = performance.now();
    return {
      update(p) {
        const payload = {
          label: p.label ?? 'files',
          documents: p.documents,
          chunks: p.chunks,
          rate: (p.filesDone / Math.max((performance.now() - t0) / 1000, 0.001)).toFixed(0),
        };
        if (!started) {
          if (p.filesTotal < 20) return; // short jobs need no bar
          bar.start(p.filesTotal, 0, payload);
          started = true;
          t0 = performance.now();
        }
        bar.setTotal(p.filesTotal);
        bar.update(p.filesDone, payload);
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let last = performance.now();
  const t0 = last;
  return {
    update(p) {
      const now = performance.now();
      if (now - last < 5000) return;
      last = now;
      const rate = p.filesDone / ((now - t0) / 1000);
      stream.write(
        `${p.label ?? 'files'} ${p.filesDone}/${p.filesTotal}, ${p.documents} docs, ${p.chunks} chunks, ${rate.toFixed(0)}/s\n`,
      );
    },
    stop() {},
  };
}

/**
 * Near-miss unanswerable questions from a QA set in the BEIR layout (`quarry eval --unanswerable <share>`):
 * a deterministic share of the corpus's documents (SQuAD: paragraphs) is held out of the ingested corpus,
 * and the questions whose every relevant document was held out become unanswerable. Their articles' other
 * paragraphs stay, so retrieval still finds text on the topic but not the answer: the near miss a real user
 * asks about, and the case where an answerer must abstain instead of quoting something related.
 */
import fs from 'node:fs';
import path from 'node:path';
import { QuarryError } from '../errors.js';
import { readCorpus } from './beir.js';
import type { Qrels } from './metrics.js';

export interface HeldOutCorpus {
  /** The reduced corpus (a JSONL file in `dir`). */
  corpusPath: string;
  /** Ids of the documents held out. */
  heldOut: Set<string>;
  /** Documents in the original corpus. */
  documents: number;
  /** How the held-out documents were chosen, for the report. */
  selection: string;
}

/**
 * Is the document at 0-based position `i` of the corpus held out? Positions are spread evenly: with share
 * 0.1 every 10th document (positions 9, 19, 29, …), with 0.25 every 4th. Corpus order is the file's order,
 * so the selection is the same on every run and machine.
 */
export function isHeldOut(i: number, share: number): boolean {
  return Math.floor((i + 1) * share + 1e-9) > Math.floor(i * share + 1e-9);
}

/** Writes `corpus` without the held-out share of its documents to `<dir>/corpus.jsonl`. */
export async function holdOutCorpus(corpus: string, share: number, dir: string): Promise<HeldOutCorpus> {
  if (!(share > 0 && share < 1))
    throw new QuarryError(
      'INVALID_ARGUMENT',
      `--unanswerable must be a share between 0 and 1, got ${share}`,
      {
        share,
      },
    );
  const out = path.join(dir, 'corpus.jsonl');
  const heldOut = new Set<string>();
  const fd = fs.openSync(out, 'w');
  let documents = 0;
  try {
    for await (const doc of readCorpus(corpus)) {
      if (isHeldOut(documents++, share)) heldOut.add(doc.id);
      else
        fs.writeSync(
          fd,
          `${JSON.stringify({ _id: doc.id, title: doc.title, text: doc.text, ...(doc.metadata ? { metadata: doc.metadata } : {}) })}\n`,
        );
    }
  } finally {
    fs.closeSync(fd);
  }
  const every = 1 / share;
  return {
    corpusPath: out,
    heldOut,
    documents,
    selection: Number.isInteger(Math.round(every * 1000) / 1000)
      ? `every ${Math.round(every)}th document in corpus order (0-based positions ${Math.round(every) - 1}, ${2 * Math.round(every) - 1}, …) held out`
      : `documents at 0-based positions i with floor((i+1)·${share}) > floor(i·${share}) held out`,
  };
}

/** Questions none of whose relevant documents remain: the unanswerable ones. */
export function unanswerableQueries(qrels: Qrels, heldOut: ReadonlySet<string>): Set<string> {
  const out = new Set<string>();
  for (const [qid, judged] of qrels) {
    const relevant = [...judged].filter(([, grade]) => grade > 0).map(([d]) => d);
    if (relevant.length > 0 && relevant.every((d) => heldOut.has(d))) out.add(qid);
  }
  return out;
}

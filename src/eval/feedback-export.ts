/**
 * `quarry feedback export`: the votes recorded against a store (`quarry feedback`, `POST /v1/feedback`) as
 * training data: one JSONL line per vote in the format `quarry train-ranker --feedback` reads (with the
 * server's query id where the vote came through it, so the trace can be opened), and candidate golden-set
 * items — each query with the documents most of its votes called helpful as its expected sources, in the
 * golden-set format `quarry eval` reads (src/eval/golden.ts) — marked as drafts for a person to review. Query text is exported as output
 * redaction leaves it, and votes on documents that no longer exist are left out (counted).
 */
import { TRUSTED_LOCAL } from '../access/principal.js';
import type { Quarry } from '../pipeline/quarry.js';
import { judgmentsFromVotes } from '../rerank/ltr/train.js';
import type { FeedbackEntry } from '../store/types.js';
import type { GoldenItemInput } from './golden.js';

export interface FeedbackExport {
  feedback: FeedbackEntry[];
  golden: GoldenItemInput[];
  /** Votes left out because their document was deleted since. */
  skipped: number;
}

export function exportFeedback(quarry: Quarry): FeedbackExport {
  const redactor = quarry.outputRedactor;
  const redact = (t: string) => (redactor === undefined ? t : redactor.redact(t).text);
  const present = new Map<string, boolean>();
  const exists = (id: string) => {
    let v = present.get(id);
    if (v === undefined) {
      v = quarry.getDocument(id, { principal: TRUSTED_LOCAL }) !== undefined;
      present.set(id, v);
    }
    return v;
  };
  const all = quarry.store.listFeedback();
  const feedback = all
    .filter((f) => exists(f.docId))
    .map((f) => ({
      query: redact(f.query),
      docId: f.docId,
      ...(f.chunkId === undefined ? {} : { chunkId: f.chunkId }),
      helpful: f.helpful,
      ...(f.queryId === undefined ? {} : { queryId: f.queryId }),
      at: f.at,
    }));
  const votes = new Map<string, number>();
  for (const f of feedback) votes.set(f.query, (votes.get(f.query) ?? 0) + 1);
  const golden = [...judgmentsFromVotes(feedback)].flatMap(([query, docs], i): GoldenItemInput[] => {
    const sources = [...docs].filter(([, g]) => g > 0).map(([doc]) => doc);
    return sources.length === 0
      ? []
      : [
          {
            id: `feedback-${i + 1}`,
            question: query,
            sources,
            tags: ['feedback'],
            draft: true,
            context: `${votes.get(query) ?? 0} feedback vote(s); add the expected answers when reviewing`,
          },
        ];
  });
  return { feedback, golden, skipped: all.length - feedback.length };
}

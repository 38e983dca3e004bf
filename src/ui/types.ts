/**
 * Answer types the views share, from the typed client (`quarry/client`): the validator's findings and the
 * chunk a citation points into.
 */
import type { AskResponse } from '../client/index.js';

/** What the validator reports about an answer's sentences (src/types.ts `AnswerValidationSummary`). */
export type ValidationSummary = NonNullable<AskResponse['validation']>;

/** The part of an answer's hit the passage panel shows: the chunk a citation points into. */
export interface AnswerChunk {
  id: number;
  start: number;
  text: string;
}

/** The chunks of an answer's hits (sent with the answer), by chunk id. */
export function answerChunks(a: AskResponse): Map<number, AnswerChunk> {
  return new Map(
    a.hits.map((h) => [h.chunk.id, { id: h.chunk.id, start: h.chunk.start, text: h.chunk.text }]),
  );
}

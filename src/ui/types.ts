/**
 * The few answer fields the API schemas leave open (`validation` is a free record, `hits` rides along as a
 * passthrough field of the answer), narrowed here at run time so the views can rely on their shape. Every
 * other type comes from the typed client, `quarry/client`.
 */
import type { AskResponse } from '../client/index.js';

/** What the validator reports about an answer's sentences (src/types.ts `AnswerValidationSummary`). */
export interface ValidationSummary {
  policy: 'flag' | 'remove';
  sentences: number;
  supported: number;
  unsupported: Array<{ text: string; support: number; markers: number[] }>;
  removed: number;
  unknownMarkers: number[];
  critique?: { verdict: string; unsupported: string[] };
}

/** The part of an answer's hit the passage panel shows: the chunk a citation points into. */
export interface AnswerChunk {
  id: number;
  start: number;
  text: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const numbers = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x) => typeof x === 'number') : []);

export function validationOf(v: unknown): ValidationSummary | undefined {
  if (!isObject(v) || !Array.isArray(v.unsupported)) return undefined;
  const critique = isObject(v.critique)
    ? {
        verdict: String(v.critique.verdict ?? ''),
        unsupported: Array.isArray(v.critique.unsupported) ? v.critique.unsupported.map(String) : [],
      }
    : undefined;
  return {
    policy: v.policy === 'remove' ? 'remove' : 'flag',
    sentences: Number(v.sentences ?? 0),
    supported: Number(v.supported ?? 0),
    unsupported: v.unsupported.filter(isObject).map((u) => ({
      text: String(u.text ?? ''),
      support: Number(u.support ?? 0),
      markers: numbers(u.markers),
    })),
    removed: Number(v.removed ?? 0),
    unknownMarkers: numbers(v.unknownMarkers),
    ...(critique === undefined ? {} : { critique }),
  };
}

/** The chunks of an answer's hits (sent with the answer), by chunk id. */
export function answerChunks(a: AskResponse): Map<number, AnswerChunk> {
  const out = new Map<number, AnswerChunk>();
  if (!Array.isArray(a.hits)) return out;
  for (const h of a.hits) {
    const c = isObject(h) ? h.chunk : undefined;
    if (isObject(c) && typeof c.id === 'number' && typeof c.start === 'number' && typeof c.text === 'string')
      out.set(c.id, { id: c.id, start: c.start, text: c.text });
  }
  return out;
}

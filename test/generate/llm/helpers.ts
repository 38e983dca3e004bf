/** Shared assertions for the LLM provider tests. */
import { expect } from 'vitest';
import { QuarryError } from '../../../src/errors.js';
import type { LlmEvent } from '../../../src/generate/llm/types.js';

export interface Collected {
  deltas: string[];
  done: Extract<LlmEvent, { type: 'done' }> | undefined;
  error: unknown;
  /** Every event, in order. */
  events: LlmEvent[];
}

/** Drains a stream, keeping the events that arrived before any error. */
export async function collect(stream: AsyncIterable<LlmEvent>): Promise<Collected> {
  const out: Collected = { deltas: [], done: undefined, error: undefined, events: [] };
  try {
    for await (const e of stream) {
      out.events.push(e);
      if (e.type === 'delta') out.deltas.push(e.text);
      else out.done = e;
    }
  } catch (e) {
    out.error = e;
  }
  return out;
}

export async function failure(p: Promise<unknown>): Promise<QuarryError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(QuarryError);
    return e as QuarryError;
  }
  throw new Error('expected a rejection');
}

export function asQuarryError(e: unknown): QuarryError {
  expect(e).toBeInstanceOf(QuarryError);
  return e as QuarryError;
}

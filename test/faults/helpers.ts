/**
 * Shared by the dependency-fault tests: reading `quarry_degraded_total` from the server's `/metrics`, and
 * asking over HTTP as JSON or as Server-Sent Events with the time each request took.
 */
import type { TestServer } from '../server/harness.js';
import { parseSse } from '../server/harness.js';

/** The value of one `quarry_degraded_total{stage,reason}` series on `/metrics` (0 when absent). */
export async function degradedTotal(t: TestServer, stage: string, reason: string): Promise<number> {
  const r = await t.call('GET', '/metrics');
  const text = String(r.body);
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`quarry_degraded_total{stage="${stage}",reason="${reason}"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

export interface Degradation {
  stage: string;
  reason: string;
}

/** The fields of an `/v1/ask` answer these tests read. */
export interface AnswerBody {
  answerer: string;
  text: string;
  degraded: Degradation[];
  fallback?: { from: string; reason: string };
}

export interface Timed<T> {
  value: T;
  ms: number;
}

export async function timed<T>(f: () => Promise<T>): Promise<Timed<T>> {
  const t0 = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t0 };
}

/** `POST /v1/ask` as JSON; the status and the body. */
export async function askJson(
  t: TestServer,
  question: string,
  extra: Record<string, unknown> = {},
): Promise<{ status: number; body: AnswerBody }> {
  const r = await t.call('POST', '/v1/ask', { body: { question, cache: false, ...extra } });
  return { status: r.status, body: r.body as AnswerBody };
}

/** `POST /v1/ask` streamed: the SSE events by name, in order, and the final `answer` event's data. */
export async function askSse(
  t: TestServer,
  question: string,
  extra: Record<string, unknown> = {},
): Promise<{ status: number; events: ReturnType<typeof parseSse>; answer: AnswerBody | undefined }> {
  const r = await t.call('POST', '/v1/ask', { body: { question, cache: false, stream: true, ...extra } });
  const events = parseSse(String(r.body));
  return { status: r.status, events, answer: events.find((e) => e.event === 'answer')?.data };
}

/**
 * Reading LLM response bodies: Server-Sent Events (parsed by `eventsource-parser`) and whole JSON bodies,
 * both under an idle deadline — the longest gap allowed between two chunks from the server. The deadline
 * only runs while waiting on the network, never while the caller is busy with the events already read.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export type { EventSourceMessage };

/** The server sent nothing for `idleMs` while a chunk was awaited. */
export class StreamIdleTimeout extends Error {
  constructor(readonly idleMs: number) {
    super(`no data from the server for ${idleMs} ms`);
    this.name = 'StreamIdleTimeout';
  }
}

/** The stream broke the SSE framing rules badly enough that reading on is pointless. */
export class SseFramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SseFramingError';
  }
}

export interface ReadOptions {
  /** Longest wait for the next chunk. */
  idleMs: number;
  /** Upper bound of one buffered line/event (guards memory against a server that never ends a line). */
  maxEventChars?: number;
}

const DEFAULT_MAX_EVENT_CHARS = 4 * 1024 * 1024;

/** Raw body chunks, each awaited under the idle deadline; the reader is cancelled on timeout or early exit. */
export async function* readChunks(
  body: ReadableStream<Uint8Array>,
  idleMs: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  const reader = body.getReader();
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StreamIdleTimeout(idleMs)), idleMs);
      });
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await Promise.race([reader.read(), idle]);
      } finally {
        clearTimeout(timer);
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    // Releases the connection when the caller stops early or the deadline fired; errors here are moot.
    reader.cancel().catch(() => {});
  }
}

/** The whole body as text (for JSON responses and error bodies), under the same idle deadline. */
export async function readText(body: ReadableStream<Uint8Array> | null, idleMs: number): Promise<string> {
  if (!body) return '';
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of readChunks(body, idleMs)) text += decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

/**
 * SSE messages in arrival order. Comments (`: keep-alive`) and unknown fields are skipped as the SSE spec
 * says; an event left unterminated when the body ends is dropped, also per spec — callers decide whether the
 * stream was complete from the events they saw.
 */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  opts: ReadOptions,
): AsyncGenerator<EventSourceMessage, void, undefined> {
  const queue: EventSourceMessage[] = [];
  let framing: SseFramingError | undefined;
  const parser = createParser({
    maxBufferSize: opts.maxEventChars ?? DEFAULT_MAX_EVENT_CHARS,
    onEvent: (e) => queue.push(e),
    onError: (e) => {
      if (e.type === 'max-buffer-size-exceeded') framing = new SseFramingError(e.message);
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of readChunks(body, opts.idleMs)) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    if (framing) throw framing;
    while (queue.length > 0) yield queue.shift()!;
  }
  parser.feed(decoder.decode());
  while (queue.length > 0) yield queue.shift()!;
}

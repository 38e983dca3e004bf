import { describe, expect, it } from 'vitest';
import { readSse, readText, SseFramingError, StreamIdleTimeout } from '../../../src/generate/llm/sse.js';

/** A body delivering `parts` as separate chunks (bytes may split a character or a line anywhere). */
function body(parts: Uint8Array[], stallAtEnd = false): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(ctl) {
      if (i < parts.length) ctl.enqueue(parts[i++]!);
      else if (!stallAtEnd) ctl.close();
      else return new Promise(() => {}); // never delivers more
    },
  });
}

const bytes = (s: string) => new TextEncoder().encode(s);

async function all(stream: AsyncIterable<{ event?: string; data: string }>) {
  const out: { event?: string; data: string }[] = [];
  for await (const e of stream)
    out.push(e.event === undefined ? { data: e.data } : { event: e.event, data: e.data });
  return out;
}

describe('readSse', () => {
  it('reassembles events split across chunks, mid-line and mid-character, with CRLF and comments', async () => {
    const raw = bytes(
      ': keep-alive\r\nevent: delta\r\ndata: {"t":"héllo ✓"}\r\n\r\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n',
    );
    const parts: Uint8Array[] = [];
    for (let i = 0; i < raw.length; i += 5) parts.push(raw.slice(i, i + 5));
    expect(await all(readSse(body(parts), { idleMs: 1000 }))).toEqual([
      { event: 'delta', data: '{"t":"héllo ✓"}' },
      { data: 'line1\nline2' },
      { data: '[DONE]' },
    ]);
  });

  it('drops an event left unterminated at the end of the body', async () => {
    expect(await all(readSse(body([bytes('data: a\n\ndata: cut')]), { idleMs: 1000 }))).toEqual([
      { data: 'a' },
    ]);
  });

  it('fails on a line longer than the buffer limit', async () => {
    const p = all(readSse(body([bytes(`data: ${'x'.repeat(500)}`)]), { idleMs: 1000, maxEventChars: 100 }));
    await expect(p).rejects.toBeInstanceOf(SseFramingError);
  });

  it('times out when the server goes silent, after delivering what came first', async () => {
    const seen: string[] = [];
    const err = await (async () => {
      try {
        for await (const e of readSse(body([bytes('data: first\n\n')], true), { idleMs: 100 }))
          seen.push(e.data);
      } catch (e) {
        return e;
      }
    })();
    expect(seen).toEqual(['first']);
    expect(err).toBeInstanceOf(StreamIdleTimeout);
    expect((err as StreamIdleTimeout).idleMs).toBe(100);
  });
});

describe('readText', () => {
  it('decodes a body split inside a multi-byte character', async () => {
    const raw = bytes('{"a":"ü"}');
    expect(await readText(body([raw.slice(0, 7), raw.slice(7)]), 1000)).toBe('{"a":"ü"}');
  });
});

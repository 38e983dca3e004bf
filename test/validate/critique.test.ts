import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/generate/llm/types.js';
import { critiqueAnswer } from '../../src/validate/critique.js';
import { startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { failFastProvider, useFakeLlmServer } from '../generate/llm/helpers.js';
import { chunk, chunkingDoc, makeSource, storageDoc } from './fixtures.js';

const server = useFakeLlmServer(startFakeOpenAIChatServer);

const provider = () => failFastProvider(server);
const reply = (value: unknown) => ({
  kind: 'reply' as const,
  deltas: [JSON.stringify(value)],
  format: 'json' as const,
});

const sources = [
  makeSource(1, storageDoc, [{ chunk: chunk(storageDoc, 'one transaction') }]),
  makeSource(2, chunkingDoc, [
    { chunk: chunk(chunkingDoc, '256 tokens') },
    { chunk: chunk(chunkingDoc, 'whole section') },
  ]),
];
const question = 'How does Quarry chunk documents, and is ingest crash-safe?';
const answer = [
  '## Chunking',
  'Documents are split along their headings, then into chunks of at most 512 tokens [2].',
  'Consecutive chunks overlap by 32 tokens [2].',
  '',
  'Every ingest batch is one transaction, so a killed process leaves no half-written document [1].',
  'Parent sections are capped at 4096 tokens [2].',
].join('\n');

describe('critiqueAnswer', () => {
  it('shows the model the numbered sources and labelled sentences, and maps its reply back', async () => {
    server.queue(
      reply({
        verdict: 'supported',
        unsupported: [
          // Copied exactly, as asked.
          'Documents are split along their headings, then into chunks of at most 512 tokens [2].',
          // With its label and without the marker.
          'S4: Parent sections are capped at 4096 tokens',
          // Not a sentence of the answer.
          'Quarry encrypts its database.',
        ],
      }),
    );
    const r = await critiqueAnswer(provider(), question, answer, sources);

    const body = server.requests[0]!.body as { messages: ChatMessage[]; response_format: unknown };
    expect(body.response_format).toEqual({ type: 'json_object' });
    const user = body.messages[1]!.content;
    expect(user).toContain(
      `<source id="1" title="Storage and durability (docs/storage-and-durability.md)">\n${sources[0]!.text}\n</source>`,
    );
    expect(user).toContain(
      `<source id="2" title="Chunking (docs/chunking.md)">\n${sources[1]!.text}\n</source>`,
    );
    expect(user).toContain(`Question: ${question}`);
    expect(user).toContain('S2: Consecutive chunks overlap by 32 tokens [2].');
    expect(user).not.toContain('S5');

    expect(r.modelVerdict).toBe('supported');
    // Two sentences named: "supported" cannot stand.
    expect(r.verdict).toBe('partially_supported');
    expect(r.sentences.map((s) => [s.text.slice(0, 24), s.supported])).toEqual([
      ['Documents are split alon', false],
      ['Consecutive chunks overl', true],
      ['Every ingest batch is on', true],
      ['Parent sections are capp', false],
    ]);
    expect(r.unsupported).toEqual([1, 4]);
    for (const s of r.sentences) expect(answer.slice(s.start, s.end)).toBe(s.text);
    expect(r.unmatched).toEqual(['Quarry encrypts its database.']);
    expect(r.attempts).toBe(1);
  });

  it('matches a lightly trimmed quote, and calls an answer with every sentence unsupported unsupported', async () => {
    server.queue(
      reply({
        verdict: 'partially_supported',
        unsupported: [
          'documents are split along their headings then into chunks of at most 512 tokens',
          'Consecutive chunks overlap by 32 tokens.',
          'S3',
          'Parent sections are capped at 4096 tokens.',
        ],
      }),
    );
    const r = await critiqueAnswer(provider(), question, answer, sources);
    expect(r.unsupported).toEqual([1, 2, 3, 4]);
    expect(r.verdict).toBe('unsupported');
  });

  it('retries once through generateStructured when the verdict is not one of the three', async () => {
    server.queue(
      reply({ verdict: 'mostly fine', unsupported: [] }),
      reply({ verdict: 'supported', unsupported: [] }),
    );
    const r = await critiqueAnswer(provider(), question, answer, sources);
    expect(r).toMatchObject({ verdict: 'supported', attempts: 2, unsupported: [] });
    const retry = (server.requests[1]!.body as { messages: ChatMessage[] }).messages;
    expect(retry[3]!.content).toContain('/verdict: must be equal to one of the allowed values');
  });
});

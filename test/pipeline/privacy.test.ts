import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AskEvent } from '../../src/pipeline/llm-answer.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';

const EMAIL = 'dana.whitfield@example.org';
const CARD = '4111 1111 1111 1111';
const dirs: string[] = [];
function workspace(): { docs: string; store: string } {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-privacy-'));
  dirs.push(d);
  // The sample docs around it give the answerer real term statistics.
  fs.cpSync(path.resolve(import.meta.dirname, '../../samples/docs'), path.join(d, 'docs'), {
    recursive: true,
  });
  fs.writeFileSync(
    path.join(d, 'docs', 'support.md'),
    `# Support\n\n## Escalation\n\nEscalations go to the on-call lead at ${EMAIL}, who answers within one hour.\n\n## Billing\n\nThe test card for refunds is ${CARD} and must never be charged.\n`,
  );
  return { docs: path.join(d, 'docs'), store: path.join(d, 'store') };
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function storeBytes(dir: string): string {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => fs.readFileSync(path.join(e.parentPath, e.name)).toString('latin1'))
    .join('\n');
}

describe('PII redaction in the pipeline', () => {
  it('redacts at ingest: nothing of the PII is stored or retrievable, answers carry the placeholders', async () => {
    const w = workspace();
    const q = Quarry.open({ store: w.store, config: { privacy: { enabled: true, at: 'ingest' } } });
    const report = await q.ingest([w.docs]);
    expect(report.redactions).toMatchObject({ email: 1, card: 1 });
    const a = await q.ask('Where do escalations go?');
    expect(a.text).toContain('[EMAIL]');
    expect(a.text).not.toContain(EMAIL);
    expect((await q.search('dana whitfield example')).hits.map((h) => h.chunk.text).join(' ')).not.toContain(
      EMAIL,
    );
    q.close();
    const bytes = storeBytes(w.store);
    expect(bytes).not.toContain(EMAIL);
    expect(bytes).not.toContain(CARD);
    expect(bytes).not.toContain('4111111111111111');
  });

  it('redacts answers only: the store keeps the text, every returned text is redacted, nothing raw streams', async () => {
    const w = workspace();
    const server = await startFakeOpenAIChatServer();
    try {
      server.respond = () => ({
        kind: 'reply',
        deltas: ['Escalations go to the on-call lead at ', 'dana.whitfield@', 'example.org [1].'],
      });
      const q = Quarry.open({
        store: w.store,
        config: {
          privacy: { enabled: true, at: 'answers' },
          llm: { provider: 'openai', baseURL: server.url, model: 'gpt-4o-mini', maxRetries: 0 },
        },
      });
      await q.ingest([w.docs]);
      // The store keeps the text; what the library returns of it is redacted.
      const id = q.store.listDocuments().find((d) => d.meta.source.endsWith('support.md'))!.id;
      expect(q.store.getDocument(id)!.text).toContain(EMAIL);
      expect(q.getDocument(id)!.text).not.toContain(EMAIL);
      expect(q.getDocument(id)!.text).toContain('[EMAIL]');
      const events: AskEvent[] = [];
      for await (const e of q.askStream('Who handles escalations?', { trace: true })) events.push(e);
      const everything = JSON.stringify(events);
      expect(everything).not.toContain(EMAIL);
      expect(everything).not.toContain('dana.whitfield@');
      const deltas = events.filter((e) => e.type === 'delta');
      expect(deltas).toHaveLength(1);
      const answer = (events.at(-1) as Extract<AskEvent, { type: 'answer' }>).answer;
      expect(answer.text).toContain('[EMAIL]');
      const stage = answer.trace!.stages.find((s) => s.stage === 'privacy.redact')!;
      expect(stage.detail.findings).toMatchObject({ email: expect.any(Number) });
      q.close();
    } finally {
      await server.close();
    }
  });

  it('refuses to open with reversible redaction when the key is missing, before touching any document', () => {
    const w = workspace();
    delete process.env.QUARRY_TEST_PII_KEY;
    expect(() =>
      Quarry.open({
        store: w.store,
        config: { privacy: { enabled: true, mode: 'reversible', keyEnv: 'QUARRY_TEST_PII_KEY' } },
      }),
    ).toThrow(/QUARRY_TEST_PII_KEY/);
  });
});

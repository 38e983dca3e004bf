/**
 * Redaction of everything the library returns when privacy redacts output (`at: 'answers'`), on a real
 * store: search results (also from the retrieval cache) with their traces, documents, document lists, parent
 * sections and answers (also from the response cache) carry no raw PII, while the store keeps the text.
 * The same calls with privacy off show the values, so the assertions are not vacuous.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { QuarryConfigInput } from '../../src/config/config.js';
import { Quarry } from '../../src/pipeline/quarry.js';

const PII = {
  email: 'dana.whitfield@example.org',
  ssn: '536-22-1937',
  nino: 'AB 12 34 56 C',
  phone: '(415) 555-2671',
  titleEmail: 'ops.lead@example.net',
};

const DOC = `# Escalation contacts for ${PII.titleEmail}

## On call

Escalations go to the on-call lead Dana Whitfield at ${PII.email} or ${PII.phone}, who answers within one hour.

## Payroll

Dana Whitfield is on payroll with SSN ${PII.ssn} and National Insurance number ${PII.nino} for the London office.
`;

const dirs: string[] = [];
const open: Quarry[] = [];
afterEach(() => {
  for (const q of open.splice(0)) q.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function quarry(privacy: QuarryConfigInput['privacy']): Promise<Quarry> {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-output-redaction-'));
  dirs.push(d);
  const q = Quarry.open({ store: path.join(d, 'store'), config: { privacy } });
  open.push(q);
  await q.addDocuments([
    { id: 'contacts', markdown: DOC, metadata: { owner: PII.email, note: `payroll ${PII.ssn}` } },
    { id: 'refunds', markdown: '# Refunds\n\nRefunds take five business days after approval.' },
  ]);
  return q;
}

/** Every raw value (and its digits alone) absent from, or present in, the JSON of `value`. */
function rawValuesIn(value: unknown): string[] {
  const json = JSON.stringify(value);
  return Object.values(PII).filter((v) => json.includes(v) || json.includes(v.replace(/\D/g, '') || v));
}

const ANSWERS = { enabled: true, at: 'answers' } as const;

describe('output redaction (privacy.at = answers)', () => {
  it('search hits, the echoed query and the trace carry no raw PII, from the pipeline and from the cache', async () => {
    const q = await quarry(ANSWERS);
    const query = `escalation contact ${PII.email} payroll ssn ${PII.ssn}`;
    const first = await q.search(query, { trace: true });
    expect(first.hits.map((h) => h.document.id)).toContain('contacts');
    expect(first.strategy).not.toBe('cache');
    expect(first.trace!.stages.length).toBeGreaterThan(0);
    expect(rawValuesIn(first)).toEqual([]);
    expect(first.query).toContain('[EMAIL]');
    expect(JSON.stringify(first.hits)).toContain('[SSN]');
    const cached = await q.search(query, { trace: true });
    expect(cached.strategy).toBe('cache');
    expect(rawValuesIn(cached)).toEqual([]);
    expect(rawValuesIn(q.searchSync(query, { trace: true, cache: false }))).toEqual([]);
  });

  it('getDocument, listDocuments and getParentSection carry no raw PII; the store keeps the text', async () => {
    const q = await quarry(ANSWERS);
    expect(rawValuesIn(q.store.getDocument('contacts'))).toEqual(Object.values(PII));
    const doc = q.getDocument('contacts')!;
    expect(rawValuesIn(doc)).toEqual([]);
    expect(doc.text).toContain('SSN [SSN] and National Insurance number [NINO]');
    expect(doc.meta.title).toBe('Escalation contacts for [EMAIL]');
    expect(doc.meta.fields).toMatchObject({ owner: '[EMAIL]', note: 'payroll [SSN]' });
    expect(rawValuesIn(q.listDocuments())).toEqual([]);
    const { hits } = await q.search('payroll national insurance');
    const chunk = hits.find((h) => h.document.id === 'contacts')!.chunk;
    const section = q.getParentSection(chunk.id)!;
    expect(section.path).toEqual(['Escalation contacts for [EMAIL]', 'Payroll']);
    expect(rawValuesIn(section)).toEqual([]);
    expect(rawValuesIn(q.store.getParentSection(chunk.id))).not.toEqual([]);
  });

  it('answers, their citations, hits and trace carry no raw PII, from the pipeline and from the cache', async () => {
    const q = await quarry(ANSWERS);
    const events: unknown[] = [];
    for await (const e of q.askStream('Who is the on-call lead for escalations?', { trace: true }))
      events.push(e);
    const answer = (events.at(-1) as { answer: import('../../src/types.js').Answer }).answer;
    expect(answer.abstained).toBe(false);
    expect(answer.citations.length).toBeGreaterThan(0);
    // The extractive answerer's trace quotes sentences of the sources.
    expect(answer.trace!.stages.some((s) => s.stage === 'answer.extractive')).toBe(true);
    expect(rawValuesIn(events)).toEqual([]);
    expect(answer.text).toContain('[EMAIL]');
    const again = await q.ask('Who is the on-call lead for escalations?', { trace: true });
    expect(again.cached).toBe(true);
    expect(rawValuesIn(again)).toEqual([]);
  });
});

describe('without output redaction', () => {
  it('privacy off: the same calls return the stored values', async () => {
    const q = await quarry({ enabled: false });
    expect(q.outputRedactor).toBeUndefined();
    const result = await q.search(`escalation contact payroll ssn ${PII.ssn}`, { trace: true });
    expect(rawValuesIn(result)).toEqual(expect.arrayContaining([PII.email, PII.ssn]));
    expect(rawValuesIn(q.getDocument('contacts'))).toEqual(Object.values(PII));
    expect(rawValuesIn(q.listDocuments())).toEqual([PII.email, PII.ssn, PII.titleEmail]);
    const chunk = result.hits.find((h) => h.document.id === 'contacts')!.chunk;
    expect(rawValuesIn(q.getParentSection(chunk.id))).not.toEqual([]);
    const answer = await q.ask('Who is the on-call lead for escalations?', { trace: true });
    expect(rawValuesIn(answer)).toContain(PII.email);
  });

  it('privacy at ingest only: stored text is already redacted and output is not scanned again', async () => {
    const q = await quarry({ enabled: true, at: 'ingest' });
    expect(q.outputRedactor).toBeUndefined();
    expect(rawValuesIn(q.store.getDocument('contacts'))).toEqual([]);
    expect(q.getDocument('contacts')!.text).toContain('[SSN]');
  });
});

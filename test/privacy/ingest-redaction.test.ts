/**
 * Redaction at ingest, end to end on real components: real files (Markdown with front matter, HTML, JSONL
 * records), the real parsers and chunker, a real SQLite store and vault on disk, then the real search path.
 * Proves that no byte of the original PII reaches the store, that chunks stay exact slices with headings
 * intact, that reversible placeholders restore the exact original text and stay searchable.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type QuarryConfig, resolveConfig } from '../../src/config/config.js';
import { type IngestContext, ingestPaths, writeDrafts } from '../../src/ingest/ingest.js';
import { countTokens } from '../../src/ingest/tokens.js';
import { normalizeSource, Quarry } from '../../src/pipeline/quarry.js';
import { createRedactor, type DocumentRedactor, type Redactor } from '../../src/privacy/redact.js';
import { VAULT_FILE } from '../../src/privacy/vault.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { DocumentDraft } from '../../src/types.js';

const KEY = randomBytes(32).toString('base64');
const CONFIG = resolveConfig({ chunking: { maxTokens: 24, overlapTokens: 6, parentMaxTokens: 64 } });

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c();
});

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `quarry-${prefix}-`));
  cleanup.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function openStore(dir: string, config: QuarryConfig = CONFIG): SqliteStore {
  const store = SqliteStore.open(dir, {
    settings: { analyzer: { ...config.analyzer }, fields: config.bm25.fields },
  });
  cleanup.push(() => store.close());
  return store;
}

/** An ingest context on a real store; indexes are rebuilt from the store by whoever opens it next. */
function context(store: SqliteStore, redact?: DocumentRedactor): IngestContext {
  return { store, config: CONFIG, apply() {}, persist() {}, ...(redact ? { redact } : {}) };
}

function reversible(storeDir: string): Redactor {
  const r = createRedactor(
    { enabled: true, mode: 'reversible', keyEnv: 'PII_KEY', phoneRegion: 'US' },
    { storeDir, env: { PII_KEY: KEY } },
  );
  cleanup.push(() => r.close());
  return r;
}

const PII = {
  email: 'zelda.quux@hyrule-mail.example',
  ownerEmail: 'impa.sheikah@kakariko.example',
  headingEmail: 'link.hero@castle.example',
  phone: '(415) 555-2671',
  card: '4111 1111 1111 1111',
  iban: 'DE89 3704 0044 0532 0130 00',
  ip: '203.0.113.77',
  ipv6: '2001:db8::4f2a:17',
  recordEmail: 'ganon.dorf@gerudo.example',
  recordPhone: '+44 20 7946 0958',
  htmlCard: '5555-5555-5555-4444',
};

/** Every form a value could take once parsed, lowercased or tokenized: none may be in the store. */
function forms(value: string): string[] {
  const out = new Set([value, value.toLowerCase(), value.replace(/[\s().-]/g, '')]);
  // Local part and domain of an address are indexed as separate terms.
  if (value.includes('@')) for (const part of value.split('@')) out.add(part.toLowerCase());
  return [...out].filter((f) => f.length >= 6);
}

function writeCorpus(dir: string): void {
  fs.writeFileSync(
    path.join(dir, 'handbook.md'),
    `---
title: Escalations for ${PII.email}
owner: ${PII.ownerEmail}
---

# Escalation handbook

When a customer writes in, reply to ${PII.email} within one business day. Urgent cases go by phone to
${PII.phone} during office hours, and every call is written up in the incident log afterwards.

## Contact ${PII.headingEmail}

Refunds are paid to card ${PII.card} or to the account ${PII.iban}; never to anything else. The finance
team confirms each refund in writing before money moves.

### Network

The bastion host is ${PII.ip} (IPv6 ${PII.ipv6}). Version 1.2.3.4 of the agent runs there; see chunk 141,
chars 2043–2208, and ISBN 978-3-16-148410-0 for the runbook that explains the rest of the procedure.
`,
  );
  fs.writeFileSync(
    path.join(dir, 'people.jsonl'),
    `${JSON.stringify({
      _id: 'person-1',
      title: 'Gerudo desk',
      text: `Write to ${PII.recordEmail} or call ${PII.recordPhone} for desert permits.`,
      metadata: { desk_email: PII.recordEmail, floor: 3 },
    })}\n`,
  );
  fs.writeFileSync(
    path.join(dir, 'billing.html'),
    `<html><head><title>Billing</title></head><body><h1>Billing</h1><p>Test card ${PII.htmlCard} is used in staging.</p></body></html>`,
  );
}

/** All bytes of the store directory (database, WAL, index snapshots), except the vault's own files. */
function storeBytes(dir: string): Buffer {
  const parts: Buffer[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!e.name.startsWith(VAULT_FILE)) parts.push(fs.readFileSync(p));
    }
  };
  walk(dir);
  return Buffer.concat(parts);
}

describe('redaction at ingest', () => {
  it('writes no byte of the original PII to the store, and counts what it redacted', async () => {
    const files = tempDir('pii-files');
    const storeDir = tempDir('pii-store');
    writeCorpus(files);
    const store = openStore(storeDir);
    const report = await ingestPaths(context(store, reversible(storeDir)), [files]);
    expect(report.errors).toEqual([]);
    expect(report.added).toBe(3);
    // The front matter stays in the document text, and the title and owner field are stored apart from it:
    // 4 in handbook.md's text + its title + its owner field, 2 in the record (text, metadata). A heading is
    // counted once, in the text.
    expect(report.redactions).toEqual({ email: 8, phone: 2, card: 2, iban: 1, ip: 2 });
    store.close();

    // Open through the library so the BM25 index (and its snapshot) is built from the stored text too.
    const q = Quarry.open({ store: storeDir, config: { chunking: CONFIG.chunking } });
    cleanup.push(() => q.close());
    expect((await q.search('escalation handbook')).hits.length).toBeGreaterThan(0);
    q.close();

    const bytes = storeBytes(storeDir);
    expect(bytes.length).toBeGreaterThan(10_000);
    for (const value of Object.values(PII)) {
      for (const f of forms(value))
        expect(bytes.includes(Buffer.from(f)), `${f} is in the store`).toBe(false);
    }
    // What is not PII survived: the version string, the ISBN, the chunk offsets.
    for (const kept of ['Version 1.2.3.4', 'ISBN 978-3-16-148410-0', 'chars 2043–2208']) {
      expect(bytes.includes(Buffer.from(kept))).toBe(true);
    }
  });

  it('keeps chunks exact slices and headings in place, and restores the exact original text', async () => {
    const files = tempDir('pii-files');
    writeCorpus(files);
    const plainStore = openStore(tempDir('plain-store'));
    await ingestPaths(context(plainStore), [files]);
    const storeDir = tempDir('pii-store');
    const store = openStore(storeDir);
    const redactor = reversible(storeDir);
    await ingestPaths(context(store, redactor), [files]);

    const id = normalizeSource(path.join(files, 'handbook.md'));
    const plain = plainStore.getDocument(id)!;
    const doc = store.getDocument(id)!;
    expect(doc.text).not.toBe(plain.text);
    expect(redactor.restore?.(doc.text)).toBe(plain.text);
    expect(redactor.restore?.(doc.meta.title)).toBe(`Escalations for ${PII.email}`);
    expect(doc.meta.fields.owner).toMatch(/^\[EMAIL_[0-9a-f]{16}\]$/);
    expect(redactor.restore?.(JSON.stringify(doc.meta.fields))).toBe(JSON.stringify(plain.meta.fields));

    const chunks = [...store.iterateChunks()].filter((c) => c.docId === id);
    const plainChunks = [...plainStore.iterateChunks()].filter((c) => c.docId === id);
    expect(chunks.length).toBeGreaterThan(3);
    for (const c of chunks) {
      expect(c.text).toBe(doc.text.slice(c.start, c.end));
      expect(c.text.trim()).toBe(c.text);
      expect(c.tokenCount).toBe(countTokens(c.text));
      expect(c.tokenCount).toBeLessThanOrEqual(CONFIG.chunking.maxTokens);
      // No placeholder is cut in half by a chunk boundary.
      expect(c.text).not.toMatch(/\[[A-Z]+_[0-9a-f]{0,15}$|^[0-9a-f]{0,16}\]/);
    }
    // The same section tree, with the address in the heading replaced.
    const paths = (cs: typeof chunks) => [...new Set(cs.map((c) => c.sectionPath.join(' › ')))];
    expect(paths(chunks).map((p) => redactor.restore?.(p))).toEqual(paths(plainChunks));
    expect(paths(chunks)).toContainEqual(
      expect.stringMatching(/^Escalation handbook › Contact \[EMAIL_[0-9a-f]{16}\]$/),
    );
    // Every character of the redacted text that is not whitespace is in some chunk.
    const covered = new Uint8Array(doc.text.length);
    for (const c of chunks) covered.fill(1, c.start, c.end);
    const bodyStart = doc.text.indexOf('# Escalation');
    for (let i = Math.max(0, bodyStart); i < doc.text.length; i++) {
      if (!/\s/.test(doc.text[i]!)) expect(covered[i], `char ${i} not in a chunk`).toBe(1);
    }
  });

  it('keeps placeholders searchable as single tokens', async () => {
    const files = tempDir('pii-files');
    writeCorpus(files);
    const storeDir = tempDir('pii-store');
    const store = openStore(storeDir);
    const redactor = reversible(storeDir);
    await ingestPaths(context(store, redactor), [files]);
    store.close();
    const placeholder = redactor.redact(`x ${PII.recordEmail} y`).text.slice(2, -2);
    const q = Quarry.open({ store: storeDir, config: { chunking: CONFIG.chunking } });
    cleanup.push(() => q.close());
    const { hits } = await q.search(placeholder);
    expect(hits[0]?.document.id).toBe('person-1');
    expect(hits[0]?.chunk.text).toContain(placeholder);
    expect(hits[0]?.document.fields.desk_email).toBe(placeholder);
  });

  it('re-ingests unchanged files only when the redaction settings change', async () => {
    const files = tempDir('pii-files');
    writeCorpus(files);
    const storeDir = tempDir('pii-store');
    const store = openStore(storeDir);
    const mask = createRedactor({ enabled: true }, { storeDir });
    expect((await ingestPaths(context(store, mask), [files])).added).toBe(3);
    const again = await ingestPaths(context(store, mask), [files]);
    expect(again.unchanged).toBe(3);
    expect(again.redactions).toEqual({});
    const switched = await ingestPaths(context(store, reversible(storeDir)), [files]);
    expect(switched.updated).toBe(3);
    expect(store.getDocument('person-1')!.text).toMatch(/\[EMAIL_[0-9a-f]{16}\]/);
  });

  it('redacts documents added already chunked, moving sections and chunks', async () => {
    const store = openStore(tempDir('pii-store'));
    const text = `Reach ${PII.email} today.\n\nCard ${PII.card} on file.`;
    const cut = text.indexOf('Card');
    const draft: DocumentDraft = {
      id: 'draft-1',
      hash: 'h1',
      text,
      meta: {
        source: 'api',
        title: `Notes on ${PII.ip}`,
        doc_type: 'text',
        tags: [],
        access_groups: [],
        access_users: [],
        fields: { contact: PII.email, team: [{ lead: PII.email, size: 3 }] },
      },
      sections: [{ ordinal: 0, path: [`About ${PII.email}`], start: 0, end: text.length }],
      chunks: [
        { ordinal: 0, section: 0, start: 0, end: cut - 2, text: text.slice(0, cut - 2), tokenCount: 1 },
        { ordinal: 1, section: 0, start: cut, end: text.length, text: text.slice(cut), tokenCount: 1 },
      ],
    };
    const mask = createRedactor({ enabled: true }, { storeDir: '/unused' });
    const report = await writeDrafts(context(store, mask), [draft]);
    expect(report.redactions).toEqual({ email: 3, card: 1, ip: 1 });
    const doc = store.getDocument('draft-1')!;
    expect(doc.text).toBe('Reach [EMAIL] today.\n\nCard [CARD] on file.');
    expect(doc.meta.title).toBe('Notes on [IP]');
    expect(doc.meta.fields).toEqual({ contact: '[EMAIL]', team: [{ lead: '[EMAIL]', size: 3 }] });
    const chunks = [...store.iterateChunks()];
    expect(chunks.map((c) => c.text)).toEqual(['Reach [EMAIL] today.', 'Card [CARD] on file.']);
    for (const c of chunks) {
      expect(c.text).toBe(doc.text.slice(c.start, c.end));
      expect(c.tokenCount).toBe(countTokens(c.text));
      expect(c.sectionPath).toEqual(['About [EMAIL]']);
    }
  });
});

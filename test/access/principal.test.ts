/**
 * Access control fails closed on every read path of the library: documents restricted by groups, users or a
 * security level are invisible — exactly as if absent — to anonymous callers (a missing principal), to users
 * in other groups and to users with too low a clearance, in search hits, ask answers (citations and the
 * context the LLM is given), getDocument, listDocuments paging, parent sections and feedback; visible to the
 * right principals; the trusted owner sees everything. Real SQLite stores in temp directories.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANONYMOUS,
  canRead,
  type DocumentInput,
  type LanguageModel,
  type LlmEvent,
  type Principal,
  Quarry,
  QuarryError,
  TRUSTED_LOCAL,
  userPrincipal,
} from '../../src/index.js';
import { askBatch } from '../../src/pipeline/batch.js';
import { SCHEMA_VERSION } from '../../src/store/sqlite/migrations.js';

const dirs: string[] = [];
function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `quarry-access-${prefix}-`));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Every document mentions "quokka"; each restricted one also carries its own secret word. */
const DOCS: DocumentInput[] = [
  { id: 'pub', markdown: '# Public\n\nThe quokka habitat guide is open to everyone on the island.' },
  {
    id: 'grp',
    markdown: '# Finance\n\nThe quokka budget ledger lists the marzipanfund allocations.',
    access: ['finance'],
  },
  {
    id: 'usr',
    markdown: '# Memo\n\nThe quokka memo for alice mentions the tangerinecode rollout.',
    access: { users: ['alice'] },
  },
  {
    id: 'lvl',
    markdown: '# Secret\n\nThe quokka vault plan names the obsidianroute corridor.',
    access: { level: 3 },
  },
  {
    id: 'both',
    markdown: '# Audit\n\nThe quokka audit trail records the saffronkey incidents.',
    access: { groups: ['finance'], level: 2 },
  },
];
const SECRET: Record<string, string> = {
  grp: 'marzipanfund',
  usr: 'tangerinecode',
  lvl: 'obsidianroute',
  both: 'saffronkey',
};
/** A word of each restricted document's text that no question asks about (so it can only come from the text). */
const BODY: Record<string, string> = {
  grp: 'allocations',
  usr: 'rollout',
  lvl: 'corridor',
  both: 'incidents',
};
const ALL = ['both', 'grp', 'lvl', 'pub', 'usr'];

/** Each principal and exactly the documents it may read. */
const CASES: Array<{ name: string; principal: Principal | undefined; sees: string[] }> = [
  { name: 'no principal (anonymous)', principal: undefined, sees: ['pub'] },
  { name: 'ANONYMOUS', principal: ANONYMOUS, sees: ['pub'] },
  { name: 'wrong group', principal: userPrincipal({ groups: ['eng'] }), sees: ['pub'] },
  { name: 'finance group', principal: userPrincipal({ groups: ['finance'] }), sees: ['grp', 'pub'] },
  {
    name: 'finance group, clearance 2',
    principal: userPrincipal({ groups: ['finance'], clearance: 2 }),
    sees: ['both', 'grp', 'pub'],
  },
  { name: 'alice', principal: userPrincipal({ userId: 'alice' }), sees: ['pub', 'usr'] },
  { name: 'bob', principal: userPrincipal({ userId: 'bob', groups: ['eng'] }), sees: ['pub'] },
  { name: 'clearance 2', principal: userPrincipal({ clearance: 2 }), sees: ['pub'] },
  { name: 'clearance 3', principal: userPrincipal({ clearance: 3 }), sees: ['lvl', 'pub'] },
  { name: 'trusted', principal: TRUSTED_LOCAL, sees: ALL },
];

const opt = (p: Principal | undefined) => (p === undefined ? {} : { principal: p });

async function thrown(f: () => unknown): Promise<QuarryError> {
  try {
    await f();
  } catch (e) {
    if (e instanceof QuarryError) return e;
    throw e;
  }
  throw new Error('expected a QuarryError');
}

/** A components.llm that records every prompt and answers citing source 1. */
function recordingLlm(prompts: string[]): LanguageModel {
  const reply = 'The quokka is described in the sources [1].';
  return {
    id: 'test:recorder',
    model: 'recorder',
    async *stream(req): AsyncIterable<LlmEvent> {
      prompts.push(req.messages.map((m) => m.content).join('\n'));
      yield { type: 'delta', text: reply };
      yield {
        type: 'done',
        finishReason: 'stop',
        model: 'recorder',
        usage: { inputTokens: 1, outputTokens: 1 },
      };
    },
    async complete(req) {
      prompts.push(req.messages.map((m) => m.content).join('\n'));
      return {
        text: reply,
        finishReason: 'stop',
        model: 'recorder',
        usage: { inputTokens: 1, outputTokens: 1 },
        attempts: 1,
      };
    },
  };
}

describe('canRead', () => {
  const doc = (access_groups: string[], access_users: string[], security_level?: number) => ({
    access_groups,
    access_users,
    ...(security_level === undefined ? {} : { security_level }),
  });
  it('applies the rule: unrestricted or named, and level within clearance; anonymous only unrestricted', () => {
    expect(canRead(ANONYMOUS, doc([], []))).toBe(true);
    expect(canRead(ANONYMOUS, doc([], [], 0))).toBe(true);
    expect(canRead(ANONYMOUS, doc([], [], 1))).toBe(false);
    expect(canRead(ANONYMOUS, doc(['a'], []))).toBe(false);
    expect(canRead(ANONYMOUS, doc([], ['u']))).toBe(false);
    expect(canRead(userPrincipal({ groups: ['a'] }), doc(['a', 'b'], ['u']))).toBe(true);
    expect(canRead(userPrincipal({ userId: 'u' }), doc(['a'], ['u']))).toBe(true);
    expect(canRead(userPrincipal({ userId: 'v', groups: ['c'] }), doc(['a'], ['u']))).toBe(false);
    expect(canRead(userPrincipal({ groups: ['a'], clearance: 1 }), doc(['a'], [], 2))).toBe(false);
    expect(canRead(userPrincipal({ clearance: 5 }), doc([], [], 5))).toBe(true);
    expect(canRead(TRUSTED_LOCAL, doc(['a'], ['u'], 99))).toBe(true);
  });
});

describe('every library read path honours the principal', () => {
  let store: string;
  let q: Quarry;
  const chunkOf: Record<string, number> = {};

  beforeAll(async () => {
    store = tempDir('store');
    q = Quarry.open({ store });
    const report = await q.addDocuments(DOCS);
    expect(report.added).toBe(DOCS.length);
    const all = await q.search('quokka', { k: 50, principal: TRUSTED_LOCAL, cache: false });
    for (const h of all.hits) chunkOf[h.document.id] = h.chunk.id;
    expect(Object.keys(chunkOf).sort()).toEqual(ALL);
  });
  afterAll(() => q?.close());

  it('stores access_users and security_level and filters on them (as the owner)', () => {
    const usr = q.getDocument('usr', { principal: TRUSTED_LOCAL })!;
    expect(usr.meta.access_users).toEqual(['alice']);
    expect(usr.meta.security_level).toBeUndefined();
    const both = q.getDocument('both', { principal: TRUSTED_LOCAL })!;
    expect(both.meta).toMatchObject({ access_groups: ['finance'], access_users: [], security_level: 2 });
    const ids = (filter: unknown) =>
      q
        .searchSync('quokka', { k: 50, filter, principal: TRUSTED_LOCAL, cache: false })
        .hits.map((h) => h.document.id)
        .sort();
    expect(ids({ security_level: { $gte: 2 } })).toEqual(['both', 'lvl']);
    expect(ids({ access_users: 'alice' })).toEqual(['usr']);
    expect(ids({ security_level: { $exists: false } })).toEqual(['grp', 'pub', 'usr']);
  });

  for (const c of CASES) {
    describe(c.name, () => {
      const hidden = ALL.filter((id) => !c.sees.includes(id));

      it('search and searchSync return only readable documents', async () => {
        const r = await q.search('quokka', { k: 50, ...opt(c.principal) });
        expect([...new Set(r.hits.map((h) => h.document.id))].sort()).toEqual(c.sees);
        const s = q.searchSync('quokka', { k: 50, cache: false, ...opt(c.principal) });
        expect([...new Set(s.hits.map((h) => h.document.id))].sort()).toEqual(c.sees);
        // A hidden document's own words find nothing.
        for (const id of hidden)
          expect((await q.search(SECRET[id]!, { ...opt(c.principal) })).hits, id).toEqual([]);
      });

      it('ask answers, cites and quotes only readable documents', async () => {
        for (const id of hidden) {
          const a = await q.ask(`What about the ${SECRET[id]}?`, { trace: true, ...opt(c.principal) });
          expect(a.hits.map((h) => h.document.id)).not.toContain(id);
          expect(a.citations.map((x) => x.docId)).not.toContain(id);
          // Nothing of the document anywhere in the answer, the trace included.
          expect(JSON.stringify(a)).not.toContain(BODY[id]);
        }
        const a = await q.ask('What does the quokka guide say?', opt(c.principal));
        for (const cite of a.citations) expect(c.sees).toContain(cite.docId);
      });

      it('getDocument, listDocuments (with paging) and countDocuments show only readable documents', () => {
        for (const id of ALL) {
          const d = q.getDocument(id, opt(c.principal));
          if (c.sees.includes(id)) expect(d?.id).toBe(id);
          else expect(d).toBeUndefined();
        }
        expect(q.getDocument('absent', opt(c.principal))).toBeUndefined();
        expect(q.listDocuments(opt(c.principal)).map((d) => d.id)).toEqual(c.sees);
        expect(q.countDocuments(opt(c.principal))).toBe(c.sees.length);
        // Pages count readable documents only: page by page, exactly the readable ones in order.
        const paged: string[] = [];
        for (let offset = 0; offset < ALL.length; offset++) {
          const page = q.listDocuments({ limit: 1, offset, ...opt(c.principal) });
          expect(page.length).toBe(offset < c.sees.length ? 1 : 0);
          paged.push(...page.map((d) => d.id));
        }
        expect(paged).toEqual(c.sees);
      });

      it('getParentSection is undefined for a chunk of a hidden document', () => {
        for (const id of ALL) {
          const s = q.getParentSection(chunkOf[id]!, opt(c.principal));
          if (c.sees.includes(id)) expect(s?.docId).toBe(id);
          else expect(s).toBeUndefined();
        }
      });

      it('recordFeedback on a hidden document is NOT_FOUND, worded as for an absent one, and not stored', async () => {
        const before = q.store.listFeedback().length;
        const absent = await thrown(() =>
          q.recordFeedback({ query: 'quokka', docId: 'absent', helpful: true }, opt(c.principal)),
        );
        for (const id of hidden) {
          const e = await thrown(() =>
            q.recordFeedback({ query: 'quokka', docId: id, helpful: true }, opt(c.principal)),
          );
          expect(e.code).toBe('NOT_FOUND');
          expect(e.message).toBe(absent.message.replace('"absent"', `"${id}"`));
          expect(e.details).toEqual({ docId: id });
          const withChunk = await thrown(() =>
            q.recordFeedback(
              { query: 'quokka', docId: id, chunkId: chunkOf[id]!, helpful: false },
              opt(c.principal),
            ),
          );
          expect(withChunk.message).toBe(e.message);
        }
        expect(q.store.listFeedback().length).toBe(before);
        for (const id of c.sees)
          expect(
            q.recordFeedback({ query: 'quokka', docId: id, helpful: true }, opt(c.principal)).docId,
          ).toBe(id);
        expect(q.store.listFeedback().length).toBe(before + c.sees.length);
      });
    });
  }

  it('the LLM context never holds text of a document the principal may not read', async () => {
    const prompts: string[] = [];
    const withLlm = Quarry.open({ store, components: { llm: recordingLlm(prompts) } });
    try {
      for (const c of CASES) {
        const hidden = ALL.filter((id) => !c.sees.includes(id));
        prompts.length = 0;
        const a = await withLlm.ask('quokka', { k: 50, cache: false, ...opt(c.principal) });
        expect(a.answerer).toBe('test:recorder');
        expect(prompts.length).toBeGreaterThan(0);
        const sent = prompts.join('\n');
        for (const id of hidden) expect(sent, `${c.name}: ${id}`).not.toContain(SECRET[id]);
        // The readable documents did reach the context (the check above is not vacuous).
        for (const id of c.sees.filter((x) => x !== 'pub'))
          expect(sent, `${c.name}: ${id}`).toContain(SECRET[id]);
        for (const cite of a.citations) expect(c.sees).toContain(cite.docId);
      }
    } finally {
      withLlm.close();
    }
  });

  it('the response and retrieval caches never serve one principal’s result to another', async () => {
    const finance = userPrincipal({ groups: ['finance'] });
    const first = await q.search('marzipanfund ledger', { principal: finance });
    expect(first.hits.map((h) => h.document.id)).toContain('grp');
    expect((await q.search('marzipanfund ledger', { principal: finance })).strategy).toBe('cache');
    for (const p of [undefined, userPrincipal({ groups: ['eng'] }), userPrincipal({ userId: 'alice' })]) {
      const other = await q.search('marzipanfund ledger', opt(p));
      expect(other.strategy).not.toBe('cache');
      expect(other.hits).toEqual([]);
    }
    // ANONYMOUS is what a missing principal means: it shares that entry (and sees nothing either).
    const anonymous = await q.search('marzipanfund ledger', { principal: ANONYMOUS });
    expect(anonymous.strategy).toBe('cache');
    expect(anonymous.hits).toEqual([]);
    const asked = await q.ask('What is in the marzipanfund ledger?', { principal: finance });
    expect(asked.citations.map((c) => c.docId)).toContain('grp');
    expect((await q.ask('What is in the marzipanfund ledger?', { principal: finance })).cached).toBe(true);
    const anon = await q.ask('What is in the marzipanfund ledger?');
    expect(anon.cached).toBeUndefined();
    expect(anon.hits).toEqual([]);
    expect(JSON.stringify(anon)).not.toContain('marzipanfund allocations');
  });

  it('the deprecated scope: { groups } still works, as a user in those groups', async () => {
    const ids = async (o: object) =>
      [...new Set((await q.search('quokka', { k: 50, ...o })).hits.map((h) => h.document.id))].sort();
    expect(await ids({ scope: { groups: ['finance'] } })).toEqual(['grp', 'pub']);
    // An empty or missing groups list is a user with no groups — never the trusted caller it once was.
    expect(await ids({ scope: { groups: [] } })).toEqual(['pub']);
    expect(await ids({ scope: {} })).toEqual(['pub']);
    const both = await thrown(() =>
      q.search('quokka', { scope: { groups: ['finance'] }, principal: TRUSTED_LOCAL }),
    );
    expect(both.code).toBe('INVALID_ARGUMENT');
  });

  it('a batch question’s groups narrow the principal, never widen it', async () => {
    const sources = async (principal: Principal | undefined, groups: string[]) => {
      const out: string[] = [];
      for await (const r of askBatch(q, [{ question: 'What is in the marzipanfund ledger?', groups }], {
        ...opt(principal),
        cache: false,
      }))
        out.push(...(r.answer?.sources ?? []).map((x) => x.docId));
      return [...new Set(out)];
    };
    // The owner acting as a finance member sees the finance document; as an eng member, not.
    expect(await sources(TRUSTED_LOCAL, ['finance'])).toContain('grp');
    expect(await sources(TRUSTED_LOCAL, ['eng'])).not.toContain('grp');
    // Without a principal (anonymous), naming a group in the question gains nothing.
    expect(await sources(undefined, ['finance'])).not.toContain('grp');
    expect(await sources(userPrincipal({ groups: ['eng'] }), ['finance'])).not.toContain('grp');
  });

  it('rejects a malformed principal instead of reading with it', async () => {
    for (const bad of [{ kind: 'admin' }, { kind: 'user', groups: 'finance', clearance: 0 }, 'trusted']) {
      const e = await thrown(() => q.search('quokka', { principal: bad as unknown as Principal }));
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(
        (await thrown(() => q.getDocument('pub', { principal: bad as unknown as Principal }))).code,
      ).toBe('INVALID_ARGUMENT');
    }
    const negative = { ...userPrincipal({}), clearance: -1 };
    expect((await thrown(() => q.listDocuments({ principal: negative }))).details).toMatchObject({
      field: 'principal.clearance',
    });
  });
});

describe('ingesting access metadata', () => {
  it('reads access_users and security_level from front matter and JSONL records', async () => {
    const dir = tempDir('docs');
    fs.writeFileSync(
      path.join(dir, 'memo.md'),
      '---\naccess_users: [carol, dave]\nsecurity_level: 4\n---\n# Memo\n\nThe wallaby memo.\n',
    );
    fs.writeFileSync(
      path.join(dir, 'recs.jsonl'),
      `${JSON.stringify({ _id: 'r1', text: 'The wallaby record.', access_users: 'erin', security_level: 1 })}\n`,
    );
    const q = Quarry.open({ store: tempDir('store') });
    try {
      const report = await q.ingest([dir]);
      expect(report.errors).toEqual([]);
      const memo = q.listDocuments({ principal: TRUSTED_LOCAL }).find((d) => d.meta.title === 'Memo')!;
      expect(memo.meta).toMatchObject({ access_users: ['carol', 'dave'], security_level: 4 });
      expect(memo.meta.fields).toEqual({});
      expect(q.getDocument('r1', { principal: TRUSTED_LOCAL })!.meta).toMatchObject({
        access_users: ['erin'],
        security_level: 1,
      });
      const ids = async (p: Principal) =>
        (await q.search('wallaby', { principal: p })).hits.map((h) => h.document.id);
      expect(await ids(userPrincipal({ userId: 'carol', clearance: 3 }))).toEqual([]);
      expect(await ids(userPrincipal({ userId: 'carol', clearance: 4 }))).toEqual([memo.id]);
      expect(await ids(userPrincipal({ userId: 'erin', clearance: 1 }))).toEqual(['r1']);
    } finally {
      q.close();
    }
  });

  it('rejects bad values naming the field', async () => {
    const dir = tempDir('bad');
    fs.writeFileSync(
      path.join(dir, 'recs.jsonl'),
      `${[
        { _id: 'ok', text: 'fine' },
        { _id: 'neg', text: 'x', security_level: -1 },
        { _id: 'frac', text: 'x', security_level: 1.5 },
        { _id: 'users', text: 'x', access_users: { name: 'a' } },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n')}\n`,
    );
    fs.writeFileSync(path.join(dir, 'fm.md'), '---\nsecurity_level: high\n---\n# T\n\ntext\n');
    const q = Quarry.open({ store: tempDir('store') });
    try {
      const report = await q.ingest([dir]);
      const byRecord = new Map(report.errors.map((e) => [e.record ?? path.basename(e.path), e]));
      for (const [rec, field] of [
        ['neg', 'security_level'],
        ['frac', 'security_level'],
        ['users', 'access_users'],
      ] as const) {
        const e = [...byRecord.values()].find(
          (x) => x.message.includes(`"${field}"`) && x.code === 'INVALID_RECORD',
        );
        expect(e, rec).toBeDefined();
      }
      expect(report.errors.filter((e) => e.code === 'INVALID_RECORD')).toHaveLength(3);
      const fm = report.errors.find((e) => e.path.endsWith('fm.md'))!;
      expect(fm.message).toContain('"security_level" must be an integer ≥ 0');
      expect(q.countDocuments({ principal: TRUSTED_LOCAL })).toBe(1);

      for (const [access, field] of [
        [{ level: -1 }, 'access.level'],
        [{ level: '2' }, 'access.level'],
        [{ users: ['ok', ''] }, 'access.users'],
        [{ groups: 'finance' }, 'access.groups'],
        [{ clearance: 2 }, 'access.clearance'],
      ] as const) {
        const e = await thrown(() =>
          q.addDocuments([{ id: 'm', text: 'memory', access: access as unknown as DocumentInput['access'] }]),
        );
        expect(e.code).toBe('INVALID_ARGUMENT');
        expect(e.details).toMatchObject({ field });
      }
      const meta = await thrown(() =>
        q.addDocuments([{ id: 'm', text: 'memory', metadata: { security_level: 'x' } }]),
      );
      expect(meta.code).toBe('INVALID_ARGUMENT');
      expect(meta.message).toContain('security_level');
      expect(q.countDocuments({ principal: TRUSTED_LOCAL })).toBe(1);
    } finally {
      q.close();
    }
  });
});

describe('stores written before access_users and security_level', () => {
  it('open, keep their documents, and lift those keys out of user fields so they restrict from now on', async () => {
    const store = tempDir('old');
    const q = Quarry.open({ store });
    await q.addDocuments([
      { id: 'plain', text: 'The numbat survey is public.', metadata: { team: 'field' } },
      { id: 'old-acl', text: 'The numbat census is private.', access: ['rangers'] },
    ]);
    q.close();
    // Back to schema 2: no new columns; what front matter said about users and levels sat in `fields`.
    const db = new Database(path.join(store, 'quarry.db'));
    db.exec(
      'ALTER TABLE documents DROP COLUMN access_users; ALTER TABLE documents DROP COLUMN security_level; ALTER TABLE feedback DROP COLUMN query_id;',
    );
    db.prepare('UPDATE documents SET fields = ? WHERE id = ?').run(
      JSON.stringify({ team: 'field', access_users: ['zed'], security_level: 2 }),
      'plain',
    );
    db.pragma('user_version = 2');
    db.close();

    const reopened = Quarry.open({ store });
    try {
      expect(reopened.stats().schemaVersion).toBe(SCHEMA_VERSION);
      const plain = reopened.getDocument('plain', { principal: TRUSTED_LOCAL })!;
      expect(plain.meta).toMatchObject({
        access_users: ['zed'],
        security_level: 2,
        fields: { team: 'field' },
      });
      expect(plain.meta.fields).not.toHaveProperty('access_users');
      expect(reopened.getDocument('old-acl', { principal: TRUSTED_LOCAL })!.meta).toMatchObject({
        access_groups: ['rangers'],
        access_users: [],
      });
      const ids = async (p: Principal | undefined) =>
        (await reopened.search('numbat', { ...opt(p), cache: false })).hits.map((h) => h.document.id).sort();
      expect(await ids(undefined)).toEqual([]);
      expect(await ids(userPrincipal({ userId: 'zed', clearance: 2 }))).toEqual(['plain']);
      expect(await ids(userPrincipal({ groups: ['rangers'] }))).toEqual(['old-acl']);
      expect(await ids(TRUSTED_LOCAL)).toEqual(['old-acl', 'plain']);
    } finally {
      reopened.close();
    }
  });
});

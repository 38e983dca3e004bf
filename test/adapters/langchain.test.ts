/**
 * quarry/langchain against the real @langchain/core and a real store: the retriever returns cited
 * `Document`s, the vector store ingests, searches (hybrid, filtered, as a principal) and deletes, and the
 * embeddings are the store's own dense model.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Document } from '@langchain/core/documents';
import { VectorStoreRetriever } from '@langchain/core/vectorstores';
import { describe, expect, it } from 'vitest';
import { TRUSTED_LOCAL, userPrincipal } from '../../src/access/principal.js';
import { QuarryEmbeddings, QuarryRetriever, QuarryVectorStore } from '../../src/adapters/langchain.js';
import type { Embedder, EmbedOptions } from '../../src/embed/types.js';
import { QuarryError } from '../../src/errors.js';
import type { SearchResult } from '../../src/pipeline/options.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { useAdapterStore } from './store.js';

const FERRY_QUERY = 'When does the ferry leave Kennacraig?';
const HARBOUR_STAFF = userPrincipal({ groups: ['harbour-staff'] });

const islay = [
  new Document({
    pageContent: 'The ferry to Port Ellen leaves Kennacraig at 07:00 every weekday.',
    metadata: {
      id: 'islay-ferry',
      source: 'timetables/islay.md',
      title: 'Islay ferries',
      topic: 'ferries',
      year: 2024,
    },
  }),
  new Document({
    pageContent:
      'Tide tables: the spring tide at Port Ellen rises 1.2 metres, and the ferry pier dries at low water.',
    metadata: { id: 'islay-tides', title: 'Port Ellen tides', topic: 'tides', year: 2023 },
  }),
  new Document({
    pageContent: "The harbour master's emergency code for the Port Ellen pier gate is 4417.",
    metadata: { id: 'harbour-code', title: 'Pier gate', topic: 'harbour', access_groups: ['harbour-staff'] },
  }),
];

/** Checks a result's citation against the store itself: the span is the text, the ids are real. */
function expectCitation(quarry: Quarry, doc: Document, rank: number): void {
  const m = doc.metadata;
  const stored = quarry.getDocument(m.docId, { principal: TRUSTED_LOCAL })!;
  expect(stored, `document ${m.docId}`).toBeDefined();
  expect(stored.text.slice(m.start, m.end)).toBe(doc.pageContent);
  expect(doc.id).toBe(m.docId);
  expect(m.rank).toBe(rank);
  expect(typeof m.chunkId).toBe('number');
  expect(quarry.getParentSection(m.chunkId, { principal: TRUSTED_LOCAL })!.docId).toBe(m.docId);
  expect(m.source).toBe(stored.meta.source);
  expect(m.title).toBe(stored.meta.title);
  expect(Array.isArray(m.sectionPath)).toBe(true);
  expect(typeof m.score).toBe('number');
}

describe('QuarryVectorStore', () => {
  const ctx = useAdapterStore('quarry-langchain-');
  const store = () => new QuarryVectorStore(undefined, { quarry: ctx.quarry });

  it('addDocuments ingests LangChain documents and returns ids: given, document.id, metadata.id, else derived', async () => {
    const vs = store();
    expect(await vs.addDocuments(islay)).toEqual(['islay-ferry', 'islay-tides', 'harbour-code']);

    const plain = new Document({
      pageContent: 'Lighthouse keepers on Islay log the weather every three hours.',
    });
    const withId = new Document({ pageContent: 'The distillery tour starts at ten.', id: 'tour' });
    const ids = await vs.addDocuments([plain, withId]);
    expect(ids[0]).toMatch(/^lc-[0-9a-f]{24}$/);
    expect(ids[1]).toBe('tour');
    // Derived from content: the same document again is the same Quarry document, unchanged.
    expect(await vs.addDocuments([plain, plain])).toEqual([ids[0], ids[0]]);
    expect(ctx.quarry.getDocument(ids[0]!)!.meta.version).toBe(1);
    expect(await vs.addDocuments([withId], { ids: ['tour-2'] })).toEqual(['tour-2']);

    const ferry = ctx.quarry.getDocument('islay-ferry')!;
    expect(ferry.text).toBe(islay[0]!.pageContent);
    expect(ferry.meta).toMatchObject({ source: 'timetables/islay.md', title: 'Islay ferries' });
    expect(ferry.meta.fields).toEqual({ topic: 'ferries', year: 2024 });
    // access_groups is Quarry's own key: the document is restricted.
    expect(ctx.quarry.getDocument('harbour-code')).toBeUndefined();
    expect(ctx.quarry.getDocument('harbour-code', { principal: HARBOUR_STAFF })!.meta.access_groups).toEqual([
      'harbour-staff',
    ]);

    await expect(vs.addDocuments([plain], { ids: ['a', 'b'] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(vs.addDocuments([withId, withId])).rejects.toThrow(/same id "tour"/);
  });

  it('similaritySearch runs hybrid search: the matching document first, its citation in metadata', async () => {
    const docs = await store().similaritySearch(FERRY_QUERY, 3);
    expect(docs).toHaveLength(3);
    expect(docs[0]).toBeInstanceOf(Document);
    expect(docs[0]!.metadata).toMatchObject({
      docId: 'islay-ferry',
      source: 'timetables/islay.md',
      title: 'Islay ferries',
      topic: 'ferries',
      year: 2024,
      start: 0,
      end: islay[0]!.pageContent.length,
      docType: 'text',
      version: 1,
    });
    // Hybrid: both retrievers scored the chunk.
    expect(Object.keys(docs[0]!.metadata.scores).sort()).toEqual(['bm25', 'dense']);
    for (const [i, d] of docs.entries()) expectCitation(ctx.quarry, d, i + 1);
  });

  it("similaritySearchWithScore returns Quarry's scores, best first", async () => {
    const pairs = await store().similaritySearchWithScore('spring tide Port Ellen', 5);
    expect(pairs[0]![0].metadata.docId).toBe('islay-tides');
    const scores = pairs.map(([, s]) => s);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    for (const [doc, score] of pairs) expect(doc.metadata.score).toBe(score);
  });

  it("filter is Quarry's metadata filter, applied inside retrieval", async () => {
    const vs = store();
    const tides = await vs.similaritySearch(FERRY_QUERY, 4, { topic: 'tides' });
    expect(tides.map((d) => d.metadata.docId)).toEqual(['islay-tides']);
    const recent = await vs.similaritySearch('Port Ellen', 10, { year: { $gte: 2024 } });
    expect(recent.map((d) => d.metadata.docId)).toEqual(['islay-ferry']);
    // The string form of a filter is Quarry's too; a malformed filter fails closed.
    expect((await vs.similaritySearch('Port Ellen', 10, '{"topic":"ferries"}')).map((d) => d.id)).toEqual([
      'islay-ferry',
    ]);
    await expect(vs.similaritySearch('Port Ellen', 10, { year: { $bogus: 1 } })).rejects.toMatchObject({
      code: 'INVALID_FILTER',
    });
  });

  it('delete({ ids }) makes a document unfindable', async () => {
    const vs = store();
    const [id] = await vs.addDocuments([
      new Document({ pageContent: 'The Bowmore round church was built in 1767 and has no corners.' }),
    ]);
    expect((await vs.similaritySearch('round church with no corners', 1))[0]!.id).toBe(id);
    await vs.delete({ ids: [id!] });
    const after = await vs.similaritySearch('round church with no corners', 10);
    expect(after.map((d) => d.id)).not.toContain(id);
    expect(ctx.quarry.getDocument(id!, { principal: TRUSTED_LOCAL })).toBeUndefined();
    await expect(vs.delete({})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('reads as its principal: a restricted document is hidden from the default (anonymous) caller', async () => {
    const query = 'harbour master emergency code pier gate';
    const anonymous = await store().similaritySearch(query, 10);
    expect(anonymous.map((d) => d.id)).not.toContain('harbour-code');
    const staff = new QuarryVectorStore(undefined, { quarry: ctx.quarry, principal: HARBOUR_STAFF });
    const seen = await staff.similaritySearch(query, 10);
    expect(seen[0]!.id).toBe('harbour-code');
    expect(seen[0]!.pageContent).toContain('4417');
  });

  it("works as a LangChain retriever through the framework's own VectorStoreRetriever", async () => {
    const retriever = store().asRetriever({ k: 2, filter: { topic: { $in: ['ferries', 'tides'] } } });
    expect(retriever).toBeInstanceOf(VectorStoreRetriever);
    const docs = await retriever.invoke(FERRY_QUERY);
    expect(docs.map((d) => d.id)).toEqual(['islay-ferry', 'islay-tides']);
  });

  it('fromTexts and fromDocuments fill a store over the given Quarry', async () => {
    const vs = await QuarryVectorStore.fromTexts(
      ['Machir Bay faces the Atlantic and has two kilometres of sand.'],
      { topic: 'beaches' },
      undefined,
      { quarry: ctx.quarry },
    );
    const docs = await vs.similaritySearch('Machir Bay sand', 1);
    expect(docs[0]!.metadata.topic).toBe('beaches');
    const again = await QuarryVectorStore.fromDocuments(
      [new Document({ pageContent: '# Birds\n\n## Geese\n\nBarnacle geese winter at Loch Gruinart.' })],
      QuarryEmbeddings.fromQuarry(ctx.quarry),
      { quarry: ctx.quarry, format: 'markdown' },
    );
    const geese = (await again.similaritySearch('barnacle geese winter', 1))[0]!;
    expect(geese.metadata.sectionPath).toEqual(['Birds', 'Geese']);
    expect(geese.metadata.title).toBe('Birds');
  });

  it('refuses raw vectors and foreign embeddings, naming what to call instead', async () => {
    const vs = store();
    const vector = await vs.embeddings.embedQuery('ferry');
    const refused = [vs.similaritySearchVectorWithScore(vector, 3), vs.addVectors([vector], [islay[0]!])];
    const errors = await Promise.all(
      refused.map((p) =>
        p.then(
          () => undefined,
          (e: unknown) => e,
        ),
      ),
    );
    expect(errors[0]).toBeInstanceOf(QuarryError);
    expect((errors[0] as QuarryError).code).toBe('INVALID_ARGUMENT');
    expect((errors[0] as Error).message).toMatch(/similaritySearch\(query, k, filter\)/);
    expect((errors[1] as Error).message).toMatch(/addDocuments\(documents\)/);
    const other = Quarry.open({ store: fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-langchain-other-')) });
    try {
      expect(() => new QuarryVectorStore(QuarryEmbeddings.fromQuarry(other), { quarry: ctx.quarry })).toThrow(
        /components: \{ embedder \}/,
      );
    } finally {
      other.close();
      fs.rmSync(other.store.dir, { recursive: true, force: true });
    }
  });
});

describe('QuarryRetriever', () => {
  const ctx = useAdapterStore('quarry-langchain-retriever-', { islay: true });

  it('invoke(query) returns Documents with the citation fields in metadata', async () => {
    const results: SearchResult[] = [];
    const retriever = new QuarryRetriever({ quarry: ctx.quarry, k: 4, onResult: (r) => results.push(r) });
    const docs = await retriever.invoke(FERRY_QUERY);
    expect(docs).toHaveLength(4);
    expect(docs.every((d) => d instanceof Document)).toBe(true);
    expect(docs[0]!.metadata).toMatchObject({
      docId: 'islay-ferry',
      source: 'timetables/islay.md',
      title: 'Islay ferries',
      sectionPath: ['Islay ferries', 'Kennacraig'],
      topic: 'ferries',
    });
    expect(docs[0]!.pageContent).toContain('leaves Kennacraig at 07:00');
    for (const [i, d] of docs.entries()) expectCitation(ctx.quarry, d, i + 1);
    // The whole result is there for whoever wants it (degraded stages, usage).
    expect(results).toHaveLength(1);
    expect(results[0]!.hits.map((h) => h.chunk.id)).toEqual(docs.map((d) => d.metadata.chunkId));
  });

  it('passes k, filter and principal to every search', async () => {
    const query = 'Port Ellen pier';
    const anonymous = await new QuarryRetriever({ quarry: ctx.quarry, k: 20 }).invoke(query);
    expect(anonymous.map((d) => d.metadata.docId)).not.toContain('harbour-code');
    const staff = new QuarryRetriever({
      quarry: ctx.quarry,
      k: 3,
      principal: userPrincipal({ groups: ['harbour-staff'] }),
    });
    const seen = await staff.invoke('harbour master emergency code');
    expect(seen).toHaveLength(3);
    expect(seen[0]!.metadata.docId).toBe('harbour-code');
    const filtered = await new QuarryRetriever({ quarry: ctx.quarry, filter: { topic: 'tides' } }).invoke(
      query,
    );
    expect(filtered.map((d) => d.metadata.docId)).toEqual(['islay-tides']);
    expect(() => new QuarryRetriever({} as never)).toThrow(/needs \{ quarry \}/);
  });
});

describe('QuarryEmbeddings', () => {
  const ctx = useAdapterStore('quarry-langchain-embeddings-', { islay: true });

  const cosine = (a: number[], b: number[]): number => {
    let dot = 0;
    let na = 0;
    let nb = 0;
    a.forEach((x, i) => {
      dot += x * b[i]!;
      na += x * x;
      nb += b[i]! * b[i]!;
    });
    return dot / Math.sqrt(na * nb);
  };

  it("embeds with the store's built-in model: its dimension, deterministic, no download", async () => {
    const embeddings = QuarryEmbeddings.fromQuarry(ctx.quarry);
    const id = await embeddings.modelId();
    const m = /^local-lsa\+ng:k(\d+)\+d(\d+):[0-9a-f]+$/.exec(id);
    expect(m, id).not.toBeNull();
    const dimension = Number(m![1]) + Number(m![2]);
    expect(await embeddings.dimension()).toBe(dimension);
    expect(ctx.quarry.stats().dense[0]!.model).toBe(id);

    const q = await embeddings.embedQuery(FERRY_QUERY);
    const docs = await embeddings.embedDocuments([
      'The ferry to Port Ellen leaves Kennacraig at 07:00 every weekday.',
      'Tide tables: the spring tide at Port Ellen rises 1.2 metres.',
    ]);
    expect(q).toHaveLength(dimension);
    expect(docs.map((d) => d.length)).toEqual([dimension, dimension]);
    expect(cosine(q, docs[0]!)).toBeGreaterThan(cosine(q, docs[1]!));
    // Deterministic: the same text gives the same vector, here and in another instance on the same store.
    expect(await embeddings.embedQuery(FERRY_QUERY)).toEqual(q);
    const reopened = Quarry.open({ store: ctx.dir });
    try {
      expect(await QuarryEmbeddings.fromQuarry(reopened).embedQuery(FERRY_QUERY)).toEqual(q);
    } finally {
      reopened.close();
    }
  });

  it('wraps any Quarry embedder, telling it queries from documents', async () => {
    const kinds: Array<EmbedOptions['kind']> = [];
    const letters: Embedder = {
      id: 'test:letters',
      dimension: 3,
      distinguishesKind: true,
      async embed(texts, opts) {
        kinds.push(opts?.kind);
        return texts.map((t) =>
          Float32Array.from([t.length, (t.match(/a/g) ?? []).length, opts?.kind === 'query' ? 1 : 0]),
        );
      },
    };
    const embeddings = new QuarryEmbeddings({ embedder: letters });
    expect(await embeddings.embedDocuments(['banana', 'kiwi'])).toEqual([
      [6, 3, 0],
      [4, 0, 0],
    ]);
    expect(await embeddings.embedQuery('papaya')).toEqual([6, 3, 1]);
    expect(kinds).toEqual(['document', 'query']);
    expect(await embeddings.modelId()).toBe('test:letters');
  });

  it('says why when the store has too little text to learn its built-in model from', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-langchain-tiny-'));
    const tiny = Quarry.open({ store: dir });
    try {
      await tiny.addDocuments([{ id: 'one', text: 'Only one short document.' }]);
      const err = await QuarryEmbeddings.fromQuarry(tiny)
        .embedQuery('anything')
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QuarryError);
      expect(err).toMatchObject({ code: 'EMBEDDING_MODEL_LOAD' });
      expect((err as Error).message).toMatch(
        /too little to learn from.*new QuarryEmbeddings\(\{ embedder \}\)/,
      );
    } finally {
      tiny.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

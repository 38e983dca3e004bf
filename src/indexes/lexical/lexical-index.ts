/**
 * Keeps the BM25 index in step with the store: builds index entries from stored chunks (title field + body),
 * applies each committed write's removed/added chunks, and persists/loads snapshots tagged with the store's
 * index version. If the snapshot is missing or stale, the index is rebuilt from the store.
 */

import { createHash } from 'node:crypto';
import type { Vocabulary } from '../../query/understand.js';
import type { DocumentStore, WriteOutcome } from '../../store/types.js';
import type { StoredChunk } from '../../types.js';
import { type Analyzer, type AnalyzerConfig, createAnalyzer, TOKENIZER_REVISION } from './analyzer.js';
import type { GroupPredicate, VisibleStatistics } from './bm25-index.js';
import { Bm25Index, type Bm25Params, type FieldSpec, type IndexableChunk } from './bm25-index.js';
import { TypoNeighbourhood } from './deletion-index.js';
import { decodeSnapshot, encodeSnapshot } from './snapshot.js';

export const SNAPSHOT_NAME = 'bm25.snapshot';

/**
 * `flat`: title and body in one field (Anserini's "flat" BEIR setting).
 * `multifield`: title and body as separate fields whose BM25 scores add up.
 */
export type FieldLayout = 'flat' | 'multifield';

export function fieldSpecs(layout: FieldLayout, weights: { title: number; body: number }): FieldSpec[] {
  return layout === 'flat'
    ? [{ name: 'contents', weight: 1 }]
    : [
        { name: 'title', weight: weights.title },
        { name: 'body', weight: weights.body },
      ];
}

export class LexicalIndex {
  readonly analyzer: Analyzer;
  private index: Bm25Index;
  private version = -1;
  private vocabCache: { index: Bm25Index; typos: TypoNeighbourhood } | undefined;
  /** How the index got into memory on open: for stats and traces. */
  loadedFrom: 'snapshot' | 'rebuild' | 'empty' = 'empty';

  constructor(
    private readonly store: DocumentStore,
    analyzerConfig: Partial<AnalyzerConfig>,
    readonly layout: FieldLayout,
    private readonly params: Bm25Params,
    private readonly weights: { title: number; body: number } = { title: 1, body: 1 },
  ) {
    this.analyzer = createAnalyzer(analyzerConfig);
    this.index = new Bm25Index(params, fieldSpecs(layout, weights));
  }

  /** Identifies everything that shapes postings; a snapshot built under another fingerprint is not used. */
  get fingerprint(): string {
    return createHash('sha256')
      .update(
        JSON.stringify({
          analyzer: this.analyzer.config,
          tokenizer: TOKENIZER_REVISION,
          layout: this.layout,
        }),
      )
      .digest('hex')
      .slice(0, 16);
  }

  get bm25(): Bm25Index {
    return this.index;
  }

  get indexVersion(): number {
    return this.version;
  }

  /** Bring the in-memory index to the store's current version: snapshot if valid, else rebuild. */
  open(): void {
    const storeVersion = this.store.indexVersion();
    const buf = this.store.readArtifact(SNAPSHOT_NAME);
    const loaded = buf === undefined ? undefined : decodeSnapshot(buf, storeVersion, this.fingerprint);
    if (loaded !== undefined) {
      loaded.setParams(this.params);
      this.index = loaded;
      this.version = storeVersion;
      this.loadedFrom = 'snapshot';
      return;
    }
    this.rebuild();
    this.loadedFrom = 'rebuild';
    this.persist();
  }

  /** Reload if another process (or a crash-recovered write) moved the store past us. */
  refreshIfStale(): boolean {
    if (this.store.indexVersion() === this.version) return false;
    this.open();
    return true;
  }

  rebuild(): void {
    const version = this.store.indexVersion();
    const index = new Bm25Index(this.params, fieldSpecs(this.layout, this.weights));
    for (const chunk of this.store.iterateChunks()) index.add(this.toIndexable(chunk, chunk.docKey));
    index.compact();
    this.index = index;
    this.version = version;
  }

  /** Mirror a committed write: drop removed chunks, add new ones. */
  apply(outcome: WriteOutcome): void {
    const removed: number[] = [];
    for (const r of outcome.results) removed.push(...r.removedChunkIds);
    this.index.removeMany(removed);
    for (const r of outcome.results)
      for (const c of r.addedChunks) this.index.add(this.toIndexable(c, r.key));
    this.version = outcome.indexVersion;
  }

  persist(): void {
    this.store.writeArtifact(SNAPSHOT_NAME, encodeSnapshot(this.index, this.version, this.fingerprint));
  }

  /**
   * idf of an analyzed term in the body text (what sentence scoring weighs terms by); with `statistics`, over
   * the documents its caller may read.
   */
  idf(term: string, statistics?: VisibleStatistics): number {
    const field = this.layout === 'flat' ? 'contents' : 'body';
    if (statistics !== undefined) return this.index.visibleIdf(field, term, statistics);
    return this.index.idf(this.index.documentFrequency(field, term));
  }

  /**
   * The body vocabulary for typo correction. An unknown term's one-edit neighbourhood is probed by hash and
   * confirmed in the index's own dictionary (see `TypoNeighbourhood`): no deletion index to build or hold.
   */
  vocabulary(allowGroup?: GroupPredicate, statistics?: VisibleStatistics): Vocabulary {
    const field = this.layout === 'flat' ? 'contents' : 'body';
    const index = this.index;
    const dict = index.dictionary(field);
    const df = index.frequencyLookup(field);
    if (this.vocabCache?.index !== index) {
      this.vocabCache = { index, typos: new TypoNeighbourhood(dict, (t) => df(t) > 0) };
    }
    const typos = this.vocabCache.typos;
    // A search that may return only some documents (a principal's, a filter's) must not be corrected towards
    // a word found only in the others: that would reveal a hidden document's words. A term counts as known
    // only if one document the search may return holds it (one single-term lookup, for the few terms asked).
    // The frequency correction ranks candidates by is the caller's visible one, like BM25's (see
    // `VisibleStatistics`): a hidden document's words must not tip a correction either.
    // Cheapest test first: the store-wide df (a lookup), then whether a returnable document holds the term,
    // and only then its visible df (a pass over its postings, cached per hidden set).
    const frequency = (t: string, n: number): number =>
      statistics === undefined ? n : index.visibleDocumentFrequency(field, t, statistics);
    const known =
      allowGroup === undefined
        ? (t: string) => frequency(t, df(t))
        : (t: string) => {
            const n = df(t);
            if (n === 0) return 0;
            return index.search({ [field]: [t] }, { k: 1, allowGroup }).length > 0 ? frequency(t, n) : 0;
          };
    return {
      df: known,
      termsOfLength: (n) => dict.filter((t) => t.length === n && known(t) > 0),
      candidates: (term, max) => typos.candidates(term, max),
    };
  }

  /** Analyzed query terms per field of this index. */
  analyzeQuery(query: string): Record<string, string[]> {
    return this.termsPerField(this.analyzer.analyze(query));
  }

  /** Already-analyzed terms (e.g. after typo correction), per field of this index. */
  termsPerField(terms: string[]): Record<string, string[]> {
    return this.layout === 'flat' ? { contents: terms } : { title: terms, body: terms };
  }

  /** The text a chunk is indexed under: its document title and section headings, then its body. */
  toIndexable(chunk: StoredChunk, group: number): IndexableChunk {
    // Section headings travel with every chunk of the section, like the title: they say what it is about.
    const title =
      chunk.sectionPath.length > 0 ? `${chunk.title} ${chunk.sectionPath.join(' ')}` : chunk.title;
    if (this.layout === 'flat') {
      return {
        chunkId: chunk.id,
        group,
        fields: { contents: this.analyzer.analyze(`${title} ${chunk.text}`) },
      };
    }
    return {
      chunkId: chunk.id,
      group,
      fields: { title: this.analyzer.analyze(title), body: this.analyzer.analyze(chunk.text) },
    };
  }
}

/**
 * PII redaction of what an answer returns (privacy.at = `answers` or `both`): the answer text, the quoted
 * spans of its citations and the text of the retrieved chunks. Offsets keep pointing into the stored text, so
 * a caller allowed to read the documents can still resolve every citation.
 */

import type { Answer, SearchHit } from '../types.js';
import type { Redactor } from './redact.js';

/** Counts findings per kind across calls, for the trace. */
export class AnswerRedaction {
  readonly findings: Record<string, number> = {};

  constructor(private readonly redactor: Pick<Redactor, 'redact'>) {}

  text(text: string): string {
    const r = this.redactor.redact(text);
    for (const f of r.findings) this.findings[f.kind] = (this.findings[f.kind] ?? 0) + 1;
    return r.text;
  }

  hits(hits: SearchHit[]): SearchHit[] {
    return hits.map((h) => ({
      ...h,
      chunk: { ...h.chunk, text: this.text(h.chunk.text), title: this.text(h.chunk.title) },
      document: { ...h.document, title: this.text(h.document.title) },
    }));
  }

  answer<A extends Pick<Answer, 'text' | 'citations'>>(answer: A): A {
    return {
      ...answer,
      text: this.text(answer.text),
      citations: answer.citations.map((c) => ({ ...c, quote: this.text(c.quote) })),
    };
  }
}

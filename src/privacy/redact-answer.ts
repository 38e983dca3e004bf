/**
 * PII redaction of what an answer returns (privacy.at = `answers` or `both`), for the answer runner: the
 * retrieved hits as soon as they are reported, then the answer itself, counting findings per kind for the
 * `privacy.redact` trace stage. The shapes are redacted by ./redact-output.ts.
 */

import type { Answer, SearchHit, TraceReport } from '../types.js';
import {
  type OutputRedactor,
  type RedactionCounts,
  redactAnswer,
  redactHits,
  redactTrace,
} from './redact-output.js';

/** Counts findings per kind across calls, for the trace. */
export class AnswerRedaction {
  readonly findings: RedactionCounts = {};

  constructor(private readonly redactor: OutputRedactor) {}

  text(text: string): string {
    const r = this.redactor.redact(text);
    for (const f of r.findings) this.findings[f.kind] = (this.findings[f.kind] ?? 0) + 1;
    return r.text;
  }

  hits(hits: SearchHit[]): SearchHit[] {
    return redactHits(hits, this.redactor, this.findings);
  }

  answer<A extends Pick<Answer, 'text' | 'citations'> & Partial<Answer>>(answer: A): A {
    return redactAnswer(answer, this.redactor, this.findings);
  }

  trace(trace: TraceReport | undefined): TraceReport | undefined {
    return trace === undefined ? undefined : redactTrace(trace, this.redactor);
  }
}

import { describe, expect, it } from 'vitest';
import { expandQuery } from '../../src/query/prf.js';

describe('RM3 expansion', () => {
  it('interpolates the original query with the feedback distribution', () => {
    // Doc A (score 3): [x, x, y, z] → P(x|A)=.5, P(y|A)=.25, P(z|A)=.25; doc B (score 1): [y, w] → .5, .5
    // P(D): A=.75, B=.25 → P(x|R)=.375, P(y|R)=.1875+.125=.3125, P(z|R)=.1875, P(w|R)=.125
    // top-2 = x (.375), y (.3125), sum .6875; λ = .5, original [q] → q: .5; x: .5·.375/.6875; y: .5·.3125/.6875
    const out = expandQuery(
      ['q'],
      [
        { terms: ['x', 'x', 'y', 'z'], score: 3 },
        { terms: ['y', 'w'], score: 1 },
      ],
      { fbDocs: 10, fbTerms: 2, originalWeight: 0.5 },
    );
    expect(out.terms).toEqual(['q', 'x', 'y']);
    expect(out.weights[0]).toBeCloseTo(0.5, 12);
    expect(out.weights[1]).toBeCloseTo((0.5 * 0.375) / 0.6875, 12);
    expect(out.weights[2]).toBeCloseTo((0.5 * 0.3125) / 0.6875, 12);
    expect(out.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('keeps the query unchanged without usable feedback', () => {
    expect(expandQuery(['a', 'b'], [])).toEqual({ terms: ['a', 'b'], weights: [1, 1], expansion: [] });
  });
});

/**
 * Configuration loading refuses what it would otherwise drop: unknown keys (with the nearest valid key) and
 * out-of-range values (with the setting's path); `Quarry.open({ create: false })` refuses a missing store.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { QuarryError } from '../../src/errors.js';
import { applyFreshness } from '../../src/fuse/freshness.js';
import { Quarry } from '../../src/pipeline/quarry.js';

function configError(input: unknown): QuarryError {
  try {
    resolveConfig(input);
  } catch (e) {
    if (e instanceof QuarryError) return e;
    throw e;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe('resolveConfig', () => {
  it('names the nearest valid key for a misspelled one, at any depth', () => {
    const e = configError({ retrieval: { fusoin: { method: 'rrf' } } });
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.message).toContain('unknown key retrieval.fusoin (did you mean retrieval.fusion?)');
    expect(e.details.unknownKeys).toEqual([{ path: 'retrieval.fusoin', suggestion: 'retrieval.fusion' }]);
    expect(configError({ LLM: { model: 'x' } }).message).toContain('unknown key LLM (did you mean llm?)');
    expect(configError({ rerank: { onnx: { modelPth: 'x' } } }).message).toMatch(
      /unknown key rerank\.onnx\.modelPth/,
    );
    expect(
      configError({ retrieval: { fusion: { byDocType: { api: { bm25: 1, dens: 0 } } } } }).message,
    ).toContain(
      'unknown key retrieval.fusion.byDocType.api.dens (did you mean retrieval.fusion.byDocType.api.dense?)',
    );
  });

  it('lists the valid keys when nothing is close', () => {
    expect(configError({ bm25: { zzzzzz: 1 } }).message).toMatch(
      /unknown key bm25\.zzzzzz \(valid keys here: k1, b, /,
    );
  });

  it('rejects out-of-range values naming the setting', () => {
    expect(configError({ retrieval: { freshness: { halfLifeDays: 0 } } }).message).toContain(
      'retrieval.freshness.halfLifeDays',
    );
    expect(configError({ retrieval: { fusion: { weights: { bm25: 2, dense: 0 } } } }).message).toContain(
      'retrieval.fusion.weights.bm25',
    );
  });

  it('accepts every valid key, including free-form maps', () => {
    expect(() =>
      resolveConfig({
        retrieval: { fusion: { method: 'rrf', byDocType: { 'api-reference': { bm25: 0.9, dense: 0.1 } } } },
        llm: { provider: 'openai', model: 'gpt-4o-mini' },
        chunking: { maxTokens: 128 },
      }),
    ).not.toThrow();
  });
});

describe('freshness options of a request', () => {
  it.each([0, -3, Number.NaN])('halfLifeDays %s is rejected, not ignored', (h) => {
    expect(() => applyFreshness([], () => undefined, { halfLifeDays: h })).toThrowError(
      /freshness\.halfLifeDays must be a number > 0/,
    );
  });
});

describe('Quarry.open({ create: false })', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-create-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('throws STORE_NOT_FOUND naming the path and creates nothing; the default still creates', () => {
    const dir = path.join(tmp, 'missing');
    let error: unknown;
    try {
      Quarry.open({ store: dir, create: false });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(QuarryError);
    expect((error as QuarryError).code).toBe('STORE_NOT_FOUND');
    expect((error as QuarryError).exitCode).toBe(4);
    expect((error as QuarryError).message).toContain(dir);
    expect(fs.existsSync(dir)).toBe(false);

    Quarry.open({ store: dir }).close();
    const again = Quarry.open({ store: dir, create: false });
    expect(again.stats().documents).toBe(0);
    again.close();
  });
});

/**
 * Token counting per model: exact encodings for OpenAI models (checked against gpt-tokenizer's own chat
 * encoding), a scaled cl100k estimate for the rest that never undercounts cl100k.
 */
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SAFETY_FACTOR, tokenizerFor } from '../../src/assemble/tokenizer.js';
import { isQuarryError } from '../../src/errors.js';

const TEXT =
  'Quarry packs sources into the window — 検索拡張生成 — without overflowing. <|endoftext|> is just text.';
const plain = { disallowedSpecial: new Set<string>() };

describe('tokenizerFor', () => {
  it('counts OpenAI models with their own encoding', () => {
    for (const model of ['gpt-4o', 'openai:gpt-4o-mini', 'gpt-4.1', 'o3-mini', 'gpt-5']) {
      const t = tokenizerFor(model);
      expect([model, t.encoding, t.exact]).toEqual([model, 'o200k_base', true]);
      expect(t.count(TEXT)).toBe(o200k.encode(TEXT, plain).length);
    }
    for (const model of ['gpt-4', 'gpt-3.5-turbo', 'openai/gpt-4-turbo']) {
      const t = tokenizerFor(model);
      expect([t.encoding, t.exact]).toEqual(['cl100k_base', true]);
      expect(t.count(TEXT)).toBe(cl100k.encode(TEXT, plain).length);
    }
  });

  it('estimates other models with cl100k times a safety factor ≥ 1', () => {
    const base = cl100k.encode(TEXT, plain).length;
    const cases: Array<[string, number]> = [
      ['anthropic:claude-sonnet-4-5', 1.5],
      ['llama-3.1-8b-instruct', 1.15],
      ['mistral-large-latest', 1.35],
      ['some-unknown-model', DEFAULT_SAFETY_FACTOR],
    ];
    for (const [model, factor] of cases) {
      const t = tokenizerFor(model);
      expect([t.exact, t.safetyFactor]).toEqual([false, factor]);
      expect(t.count(TEXT)).toBe(Math.ceil(base * factor));
      expect(t.count(TEXT)).toBeGreaterThan(base);
    }
    expect(tokenizerFor('claude-3-haiku', { safetyFactor: 2 }).count(TEXT)).toBe(base * 2);
    expect(tokenizerFor('gpt-4o', { safetyFactor: 2 }).count(TEXT)).toBe(o200k.encode(TEXT, plain).length);
  });

  it('counts a chat request exactly as the OpenAI chat encoding does', () => {
    const messages = [
      { role: 'system' as const, content: 'Use only the sources.' },
      { role: 'user' as const, content: TEXT },
    ];
    const t = tokenizerFor('gpt-4o');
    expect(t.countMessages(messages)).toBe(o200k.encodeChat(messages, 'gpt-4o', plain).length);
    expect(tokenizerFor('gpt-4').countMessages(messages)).toBe(
      cl100k.encodeChat(messages, 'gpt-4', plain).length,
    );
    expect(tokenizerFor('claude-opus-4').countMessages(messages)).toBeGreaterThan(
      cl100k.encodeChat(messages, 'gpt-4', plain).length,
    );
  });

  it('rejects a missing model and a factor below 1', () => {
    for (const bad of [() => tokenizerFor(' '), () => tokenizerFor('claude', { safetyFactor: 0.5 })]) {
      try {
        bad();
        throw new Error('expected an error');
      } catch (e) {
        expect(isQuarryError(e) && e.code).toBe('INVALID_CONFIG');
      }
    }
  });
});

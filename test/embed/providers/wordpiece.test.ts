import { describe, expect, it } from 'vitest';
import { WordPieceTokenizer } from '../../../src/embed/providers/wordpiece.mjs';
import { tokenizerJson, VOCAB } from './onnx-fixture.js';

const id = (t: (typeof VOCAB)[number]) => VOCAB.indexOf(t);

describe('WordPiece tokenizer', () => {
  const tok = new WordPieceTokenizer(tokenizerJson());

  it('lowercases, splits punctuation, adds [CLS]/[SEP]', () => {
    expect(tok.encode('The quick, brown FOX.')).toEqual([
      id('[CLS]'),
      id('the'),
      id('quick'),
      id(','),
      id('brown'),
      id('fox'),
      id('.'),
      id('[SEP]'),
    ]);
  });

  it('uses ## continuations greedily, longest match first', () => {
    expect(tok.wordIds('dogs')).toEqual([id('dog'), id('##s')]);
    expect(tok.wordIds('running')).toEqual([id('run'), id('##ning')]);
    expect(tok.wordIds('runs')).toEqual([id('run'), id('##s')]);
  });

  it('maps a word with no full segmentation to a single [UNK]', () => {
    expect(tok.wordIds('dogx')).toEqual([id('[UNK]')]);
    expect(tok.encode('zebra fox')).toEqual([id('[CLS]'), id('[UNK]'), id('fox'), id('[SEP]')]);
  });

  it('strips accents and cleans control characters and odd whitespace', () => {
    expect(tok.encode('Hélló\u0000\tthe\u00a0dog')).toEqual([
      id('[CLS]'),
      id('hello'),
      id('the'),
      id('dog'),
      id('[SEP]'),
    ]);
  });

  it('reads TemplateProcessing special tokens too', () => {
    const t = new WordPieceTokenizer(tokenizerJson({ template: true }));
    expect(t.encode('a cat')).toEqual([id('[CLS]'), id('a'), id('cat'), id('[SEP]')]);
  });

  it('truncates to maxLength, keeping [SEP]', () => {
    const t = new WordPieceTokenizer(tokenizerJson(), { maxLength: 4 });
    expect(t.encode('the quick brown fox')).toEqual([id('[CLS]'), id('the'), id('quick'), id('[SEP]')]);
  });

  it('pads a batch and builds the attention mask', () => {
    const b = tok.encodeBatch(['fox', 'the lazy dog']);
    expect(b.seqLen).toBe(5);
    expect(b.lengths).toEqual([3, 5]);
    expect(Array.from(b.ids, Number)).toEqual([2, 7, 3, 0, 0, 2, 4, 10, 11, 3]);
    expect(Array.from(b.mask, Number)).toEqual([1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
  });

  it('refuses tokenizers it cannot reproduce', () => {
    const bpe = { model: { type: 'BPE', vocab: {}, merges: [] } };
    expect(() => new WordPieceTokenizer(bpe)).toThrow(/"BPE" is not supported/);
    expect(() => new WordPieceTokenizer({})).toThrow(/no "model"/);
    const noUnk = tokenizerJson() as { model: { unk_token: string } };
    noUnk.model.unk_token = '<unk>';
    expect(() => new WordPieceTokenizer(noUnk)).toThrow(/"<unk>" is not in the vocabulary/);
  });
});

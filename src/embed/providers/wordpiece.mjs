// A BERT-style WordPiece tokenizer read from a Hugging Face `tokenizer.json`, in plain JavaScript so the ONNX
// inference worker can load it without a TypeScript loader (types: wordpiece.d.mts). It covers what BERT-family
// embedding models (MiniLM, BGE, E5, GTE, nomic…) use: the BertNormalizer (clean text, CJK spacing, accent
// stripping, lowercasing) or simple normalizer sequences, the Bert / Whitespace pre-tokenizers, greedy
// longest-match-first WordPiece with `##` continuations and [UNK], and [CLS] … [SEP] post-processing.
// Added special tokens typed literally in the input are not matched as units.

const PUNCT = /[\p{P}$+<=>^`|~]/u;
const CONTROL = /\p{C}/u;
const SPACE = /[\s\p{Zs}]/u;
const MARK = /\p{Mn}/gu;

/** @param {number} cp */
function isCjk(cp) {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

export class TokenizerConfigError extends Error {}

/** @param {any} cfg @returns {(s: string) => string} */
function buildNormalizer(cfg) {
  if (cfg === null || cfg === undefined) return (s) => s;
  switch (cfg.type) {
    case 'BertNormalizer': {
      const cleanText = cfg.clean_text !== false;
      const cjk = cfg.handle_chinese_chars !== false;
      const lowercase = cfg.lowercase !== false;
      const strip =
        cfg.strip_accents === null || cfg.strip_accents === undefined ? lowercase : cfg.strip_accents;
      return (s) => {
        let out = '';
        for (const ch of s) {
          const cp = ch.codePointAt(0) ?? 0;
          if (cleanText) {
            if (cp === 0 || cp === 0xfffd) continue;
            if (ch === '\t' || ch === '\n' || ch === '\r' || SPACE.test(ch)) {
              out += ' ';
              continue;
            }
            if (CONTROL.test(ch)) continue;
          }
          out += cjk && isCjk(cp) ? ` ${ch} ` : ch;
        }
        if (strip) out = out.normalize('NFD').replace(MARK, '');
        return lowercase ? out.toLowerCase() : out;
      };
    }
    case 'Lowercase':
      return (s) => s.toLowerCase();
    case 'StripAccents':
      return (s) => s.normalize('NFD').replace(MARK, '');
    case 'NFD':
    case 'NFC':
    case 'NFKD':
    case 'NFKC':
      return (s) => s.normalize(cfg.type);
    case 'Sequence': {
      const steps = (cfg.normalizers ?? []).map(buildNormalizer);
      return (s) => steps.reduce((acc, f) => f(acc), s);
    }
    default:
      throw new TokenizerConfigError(`unsupported normalizer type "${cfg.type}"`);
  }
}

/** Splits on whitespace and isolates every punctuation character (BertPreTokenizer). @param {string} s */
function bertSplit(s) {
  /** @type {string[]} */
  const words = [];
  let cur = '';
  for (const ch of s) {
    if (SPACE.test(ch)) {
      if (cur) words.push(cur);
      cur = '';
    } else if (PUNCT.test(ch)) {
      if (cur) words.push(cur);
      words.push(ch);
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (cur) words.push(cur);
  return words;
}

/** @param {any} cfg @returns {(s: string) => string[]} */
function buildPreTokenizer(cfg) {
  if (cfg === null || cfg === undefined) return (s) => s.split(/\s+/u).filter(Boolean);
  switch (cfg.type) {
    case 'BertPreTokenizer':
      return bertSplit;
    case 'WhitespaceSplit':
      return (s) => s.split(/\s+/u).filter(Boolean);
    case 'Whitespace':
      return (s) => s.match(/\w+|[^\w\s]+/gu) ?? [];
    case 'Sequence': {
      const steps = (cfg.pretokenizers ?? []).map(buildPreTokenizer);
      return (s) => steps.reduce((words, f) => words.flatMap(f), [s]);
    }
    default:
      throw new TokenizerConfigError(`unsupported pre-tokenizer type "${cfg.type}"`);
  }
}

/**
 * Ids added before and after the sequence. @param {any} cfg @param {Map<string, number>} vocab
 * @returns {{ prefix: number[]; suffix: number[] }}
 */
function buildSpecials(cfg, vocab) {
  if (cfg === null || cfg === undefined) return { prefix: [], suffix: [] };
  /** @param {string} token @param {number | undefined} id */
  const idOf = (token, id) => {
    if (typeof id === 'number') return id;
    const v = vocab.get(token);
    if (v === undefined) throw new TokenizerConfigError(`special token "${token}" is not in the vocabulary`);
    return v;
  };
  switch (cfg.type) {
    case 'BertProcessing':
      return { prefix: [idOf(cfg.cls[0], cfg.cls[1])], suffix: [idOf(cfg.sep[0], cfg.sep[1])] };
    case 'TemplateProcessing': {
      const prefix = [];
      const suffix = [];
      let seen = false;
      for (const piece of cfg.single ?? []) {
        if (piece.Sequence) {
          seen = true;
          continue;
        }
        if (!piece.SpecialToken) continue;
        const name = piece.SpecialToken.id;
        const spec = cfg.special_tokens?.[name];
        const ids = spec?.ids ?? [idOf(name, undefined)];
        (seen ? suffix : prefix).push(...ids);
      }
      return { prefix, suffix };
    }
    case 'Sequence': {
      const parts = (cfg.processors ?? []).map((/** @type {any} */ p) =>
        p.type === 'ByteLevel' ? { prefix: [], suffix: [] } : buildSpecials(p, vocab),
      );
      return { prefix: parts.flatMap((p) => p.prefix), suffix: parts.flatMap((p) => p.suffix) };
    }
    default:
      throw new TokenizerConfigError(`unsupported post-processor type "${cfg.type}"`);
  }
}

export class WordPieceTokenizer {
  /**
   * @param {any} json a parsed tokenizer.json
   * @param {{ maxLength?: number }} [opts]
   */
  constructor(json, opts = {}) {
    if (!json || typeof json !== 'object' || !json.model || typeof json.model !== 'object') {
      throw new TokenizerConfigError('tokenizer.json has no "model" section');
    }
    const model = json.model;
    const type = model.type ?? (model.continuing_subword_prefix !== undefined ? 'WordPiece' : undefined);
    if (type !== 'WordPiece') {
      throw new TokenizerConfigError(
        `tokenizer model type "${type}" is not supported; only WordPiece (BERT-style) tokenizers are`,
      );
    }
    if (!model.vocab || typeof model.vocab !== 'object') {
      throw new TokenizerConfigError('tokenizer.json WordPiece model has no vocab');
    }
    /** @type {Map<string, number>} */
    this.vocab = new Map(Object.entries(model.vocab));
    this.unkToken = model.unk_token ?? '[UNK]';
    const unk = this.vocab.get(this.unkToken);
    if (unk === undefined)
      throw new TokenizerConfigError(`unknown token "${this.unkToken}" is not in the vocabulary`);
    this.unkId = unk;
    this.prefix = model.continuing_subword_prefix ?? '##';
    this.maxWordChars = model.max_input_chars_per_word ?? 100;
    this.normalize = buildNormalizer(json.normalizer);
    this.preTokenize = buildPreTokenizer(json.pre_tokenizer);
    this.specials = buildSpecials(json.post_processor, this.vocab);
    const configured = json.truncation?.max_length;
    this.maxLength = opts.maxLength ?? (typeof configured === 'number' ? configured : 512);
    const specialCount = this.specials.prefix.length + this.specials.suffix.length;
    if (!Number.isInteger(this.maxLength) || this.maxLength <= specialCount) {
      throw new TokenizerConfigError(
        `maxLength must be an integer above ${specialCount}, got ${this.maxLength}`,
      );
    }
    this.padId = json.padding?.pad_id ?? this.vocab.get('[PAD]') ?? 0;
  }

  /** WordPiece ids of one pre-tokenized word. @param {string} word @returns {number[]} */
  wordIds(word) {
    const chars = Array.from(word);
    if (chars.length > this.maxWordChars) return [this.unkId];
    /** @type {number[]} */
    const ids = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found = -1;
      while (start < end) {
        let piece = chars.slice(start, end).join('');
        if (start > 0) piece = this.prefix + piece;
        const id = this.vocab.get(piece);
        if (id !== undefined) {
          found = id;
          break;
        }
        end--;
      }
      if (found < 0) return [this.unkId];
      ids.push(found);
      start = end;
    }
    return ids;
  }

  /** Token ids with the special tokens, truncated to `maxLength`. @param {string} text @returns {number[]} */
  encode(text) {
    const budget = this.maxLength - this.specials.prefix.length - this.specials.suffix.length;
    /** @type {number[]} */
    const body = [];
    for (const word of this.preTokenize(this.normalize(text))) {
      for (const id of this.wordIds(word)) {
        if (body.length >= budget) break;
        body.push(id);
      }
      if (body.length >= budget) break;
    }
    return [...this.specials.prefix, ...body, ...this.specials.suffix];
  }

  /**
   * A padded batch as the model's int64 inputs.
   * @param {string[]} texts
   * @returns {{ ids: BigInt64Array; mask: BigInt64Array; batch: number; seqLen: number; lengths: number[] }}
   */
  encodeBatch(texts) {
    const encoded = texts.map((t) => this.encode(t));
    const seqLen = Math.max(1, ...encoded.map((e) => e.length));
    const ids = new BigInt64Array(texts.length * seqLen).fill(BigInt(this.padId));
    const mask = new BigInt64Array(texts.length * seqLen);
    encoded.forEach((e, b) => {
      for (let t = 0; t < e.length; t++) {
        ids[b * seqLen + t] = BigInt(e[t] ?? 0);
        mask[b * seqLen + t] = 1n;
      }
    });
    return { ids, mask, batch: texts.length, seqLen, lengths: encoded.map((e) => e.length) };
  }
}

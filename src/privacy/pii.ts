/**
 * PII detection for the privacy stage: finds e-mail addresses, phone numbers, payment cards, IBANs, IP
 * addresses, national identifiers (US SSN, UK National Insurance number, Canadian SIN) and operator-defined
 * patterns in text, with exact character offsets, so redaction (redact.ts)
 * can replace them at ingest and on answers. Every built-in kind is confirmed by a checksum or a validator,
 * not by shape alone: precision matters because a false positive destroys searchable text.
 */
import { isIP } from 'node:net';
import type { CountryCode, PhoneNumber } from 'libphonenumber-js/max';
import { z } from 'zod';
import { QuarryError } from '../errors.js';
import { lazyModule } from '../lazy.js';

// libphonenumber's metadata and ajv-formats load on the first scan, not with every process that imports
// the privacy stage (most run with redaction off).
const phones = lazyModule<typeof import('libphonenumber-js/max')>('libphonenumber-js/max');
const formats = lazyModule<typeof import('ajv-formats/dist/formats.js')>('ajv-formats/dist/formats.js');

export const BUILTIN_PII_KINDS = ['email', 'phone', 'card', 'iban', 'ip', 'ssn', 'nino', 'sin'] as const;
export type BuiltinPiiKind = (typeof BUILTIN_PII_KINDS)[number];
/** A built-in kind or the name of a custom pattern. */
export type PiiKind = BuiltinPiiKind | (string & {});

export interface PiiFinding {
  kind: PiiKind;
  /** Offsets into the scanned text, end exclusive: `text.slice(start, end) === finding.text`. */
  start: number;
  end: number;
  text: string;
}

export const CustomPatternSchema = z.object({
  /** Becomes the finding kind and the placeholder label (`employee_id` → `[EMPLOYEE_ID]`). */
  name: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,31}$/, 'a letter, then letters, digits or _ (max 32)'),
  /** JavaScript regular expression source. Trusted operator input: it runs on every document. */
  pattern: z.string().min(1),
  /** RegExp flags (`i`, `m`, `s`, `u`…); `g` is implied. */
  flags: z.string().optional(),
});
export type CustomPattern = z.infer<typeof CustomPatternSchema>;

export interface PiiDetectorOptions {
  /** Built-in kinds to look for (default: all). */
  kinds?: readonly BuiltinPiiKind[];
  /** ISO 3166 region used to read national phone numbers (`(415) 555-2671` in `US`). International `+…`
   * numbers are found whatever the region; without one, only they are. */
  phoneRegion?: string;
  custom?: readonly CustomPattern[];
}

export interface PiiDetector {
  readonly kinds: readonly PiiKind[];
  /** Findings in text order, non-overlapping. */
  detect(text: string): PiiFinding[];
}

/**
 * Placeholders written by redaction (`[EMAIL]`, `[EMAIL_0123456789abcdef]`). Detection skips them so
 * redacting twice changes nothing, and a hex token that happens to be all digits is never read as a card
 * or a phone number.
 */
export const PLACEHOLDER_PATTERN = /\[[A-Z][A-Z0-9_]{0,31}(?:_[0-9a-f]{16})?\]/g;

// --- checksums ----------------------------------------------------------------------------------------------

/** Luhn (mod 10) check over a string of digits. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** IBAN length per country (SWIFT IBAN registry; French and British territories use FR / GB numbers). */
// biome-ignore format: a table reads better packed
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28, CH: 21,
  CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FK: 18, FO: 18,
  FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23,
  IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, LY: 25, MC: 27,
  MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18, NO: 15, OM: 23, PK: 24, PL: 28,
  PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27,
  SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

/** Structural IBAN check: known country, its exact length, and ISO 7064 mod-97 = 1. Spaces are ignored. */
export function ibanValid(iban: string): boolean {
  const s = iban.replace(/ /g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(s)) return false;
  if (IBAN_LENGTHS[s.slice(0, 2)] !== s.length) return false;
  const rearranged = s.slice(4) + s.slice(0, 4);
  let rem = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    // Letters count as two digits (A = 10 … Z = 35).
    if (code >= 65) rem = (rem * 100 + (code - 55)) % 97;
    else rem = (rem * 10 + (code - 48)) % 97;
  }
  return rem === 1;
}

// --- per-kind scanners --------------------------------------------------------------------------------------

type Span = Omit<PiiFinding, 'text'>;

/**
 * Bounded (RFC 5321 limits: 64-character local part, 63-character labels) and anchored at the start of a
 * run, so a long base64 blob or hex dump costs linear time instead of a rescan from every character.
 */
const EMAIL_CANDIDATE =
  /(?<![A-Za-z0-9.!#$%&'*+/=?^_`{|}~-])[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}(?![A-Za-z0-9-])/g;

function scanEmails(text: string, out: Span[]): void {
  for (const m of text.matchAll(EMAIL_CANDIDATE)) {
    let start = m.index;
    let end = start + m[0].length;
    // Quotes, slashes and dots are legal inside a local part but are usually prose around it.
    while (start < end && /[.'`{|}~!#$%&*+/=?^-]/.test(text[start]!)) start++;
    while (end > start && /[.-]/.test(text[end - 1]!)) end--;
    const candidate = text.slice(start, end);
    const tld = candidate.slice(candidate.lastIndexOf('.') + 1);
    if (/^[A-Za-z]{2,63}$/.test(tld) && (formats().fullFormats.email as RegExp).test(candidate))
      out.push({ kind: 'email', start, end });
  }
}

/** Digit runs that could hold a phone number (≥ 6 digits with phone punctuation between them). */
const PHONE_REGION = /[+(]?\d[\d\s()./–-]{4,40}\d/g;
/** Characters of context either side of a region: the matcher looks at what surrounds a number. */
const PHONE_MARGIN = 8;
const PHONE_WINDOW = 160;

/**
 * libphonenumber's matcher costs ~3 µs per character of prose, so it reads only the regions around digit
 * runs long enough to be a number (with some context), not whole documents.
 */
function scanPhones(text: string, region: CountryCode | undefined, out: Span[]): void {
  // Digit runs already inside a longer, checksum-confirmed value (a card, an IBAN) need no phone reading.
  const covered = [...out].sort((a, b) => a.start - b.start);
  let c = 0;
  const windows: Array<{ start: number; end: number }> = [];
  for (const m of text.matchAll(PHONE_REGION)) {
    while (c < covered.length && covered[c]!.end <= m.index) c++;
    const cover = covered[c];
    if (cover && cover.start <= m.index && m.index + m[0].length <= cover.end) continue;
    let digits = 0;
    for (const ch of m[0]) if (ch >= '0' && ch <= '9') digits++;
    if (digits < 6) continue;
    const start = Math.max(0, m.index - PHONE_MARGIN);
    const end = Math.min(text.length, m.index + m[0].length + PHONE_MARGIN);
    const last = windows[windows.length - 1];
    // Merged, but not without bound: the matcher slows down more than linearly on long numeric runs
    // (tables), and a phone number is far shorter than a window.
    if (last && start <= last.end && end - last.start <= PHONE_WINDOW) last.end = end;
    else windows.push({ start, end });
  }
  const options = region ? { defaultCountry: region } : {};
  for (const w of windows) {
    let from = w.start;
    scan: while (from < w.end) {
      for (const f of phones().searchPhoneNumbersInText(text.slice(from, w.end), options)) {
        const start = from + f.startsAt;
        const raw = text.slice(start, from + f.endsAt);
        const length = numberLength(raw, f.number);
        if (groupedLikeFormat(raw.slice(0, length), f.number))
          out.push({ kind: 'phone', start, end: start + length });
        if (length < raw.length) {
          // The matcher swallowed a neighbour as an "extension": read again right after the number.
          from = start + length;
          continue scan;
        }
      }
      break;
    }
  }
}

/** Length of the number within a match: an extension counts only when a marker (ext, x, #) introduces it. */
function numberLength(raw: string, number: PhoneNumber): number {
  if (number.ext === undefined) return raw.length;
  const nsn = number.nationalNumber;
  let seen = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i]! < '0' || raw[i]! > '9') continue;
    // Skip the country code / trunk prefix digits: count only once the rest starts with the NSN.
    if (seen === 0 && !digitsOf(raw.slice(i)).startsWith(nsn)) continue;
    if (++seen === nsn.length) {
      const between = raw.slice(i + 1, raw.length - number.ext.length);
      return /ext|x|#|доб/i.test(between) ? raw.length : i + 1;
    }
  }
  return raw.length;
}

function digitsOf(s: string): string {
  return s.replace(/\D/g, '');
}

/** Positions (within the national significant number) where a written number breaks its digit groups. */
function groupBreaks(written: string, nsn: string): Set<number> | undefined {
  const groups = written.match(/\d+/g) ?? [];
  const all = groups.join('');
  const at = all.lastIndexOf(nsn);
  if (at < 0) return undefined;
  const breaks = new Set<number>();
  let pos = 0;
  for (const g of groups) {
    pos += g.length;
    if (pos > at && pos < at + nsn.length) breaks.add(pos - at);
  }
  return breaks;
}

/**
 * libphonenumber-js lacks libphonenumber's STRICT_GROUPING leniency, so digits that merely add up to a valid
 * number ("2024 2024 42", a run of years) would pass. Accept a number written in one piece, or whose group
 * breaks all fall where the national or international format breaks it.
 */
function groupedLikeFormat(raw: string, number: PhoneNumber): boolean {
  const nsn = number.nationalNumber;
  const written = groupBreaks(raw.slice(0, raw.length - (number.ext?.length ?? 0)), nsn);
  if (written === undefined || written.size === 0) return true;
  return [number.formatNational(), number.formatInternational()].some((formatted) => {
    const expected = groupBreaks(formatted, nsn);
    return expected !== undefined && [...written].every((b) => expected.has(b));
  });
}

/**
 * Card candidates: 13–19 contiguous digits, or digit groups joined by one consistent separator (space or
 * dash), starting with a group of four, not part of a longer number, word or decimal. The groups must then
 * have a printed card's shape (`cardShape`): a table of numbers passes Luhn one time in ten, and only the
 * shape keeps those rows from being read as cards. The digits of a printed IBAN (after `DE89 `) are not a card
 * even when that IBAN's checksum is wrong.
 */
const CARD_CANDIDATE =
  /(?<![\p{L}\p{N}_.,+-]|\b[A-Z]{2}\d{2} )(?:\d{13,19}|\d{4}([ -])\d{4,6}(?:\1\d{1,5}){1,3})(?![\p{L}\p{N}_]|[.,/-]\p{N})/gu;

function scanCards(text: string, out: Span[]): void {
  for (const m of text.matchAll(CARD_CANDIDATE)) {
    const sep = m[1];
    if (sep === undefined) {
      if (isCard(m[0])) out.push({ kind: 'card', start: m.index, end: m.index + m[0].length });
      continue;
    }
    // A grouped run may carry a neighbouring number (a CVV, a year): take the first, longest window of
    // whole groups that is a card.
    const groups = m[0].split(sep);
    const offsets: number[] = [];
    let at = m.index;
    for (const g of groups) {
      offsets.push(at);
      at += g.length + 1;
    }
    const card = cardWindow(groups, offsets);
    if (card) out.push(card);
  }
}

function cardWindow(groups: string[], offsets: number[]): Span | undefined {
  for (let i = 0; i < groups.length; i++) {
    for (let j = groups.length; j > i + 2; j--) {
      const window = groups.slice(i, j);
      if (cardShape(window.map((g) => g.length)) && isCard(window.join(''))) {
        return { kind: 'card', start: offsets[i]!, end: offsets[j - 1]! + groups[j - 1]!.length };
      }
    }
  }
  return undefined;
}

/** How cards are printed: 4-4-4-4, 4-4-4-4-3 (19 digits), 4-4-4-1 (13), 4-6-5 (Amex), 4-6-4 (Diners). */
const CARD_SHAPES = new Set(['4-4-4-4', '4-4-4-4-3', '4-4-4-1', '4-6-5', '4-6-4']);

function cardShape(sizes: number[]): boolean {
  return CARD_SHAPES.has(sizes.join('-'));
}

/**
 * Issued by a payment network: major industry identifier 2–6 (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4,
 * Discover/UnionPay/Maestro 6). Rules out ms timestamps (1…), ISBNs (9…) and many serial numbers.
 */
function isCard(digits: string): boolean {
  const mii = digits.charCodeAt(0) - 48;
  return digits.length >= 13 && digits.length <= 19 && mii >= 2 && mii <= 6 && luhnValid(digits);
}

const IBAN_START = /(?<![\p{L}\p{N}_])([A-Z]{2})\d{2}(?=[ ]?[A-Z0-9])/gu;

function scanIbans(text: string, out: Span[]): void {
  for (const m of text.matchAll(IBAN_START)) {
    const length = IBAN_LENGTHS[m[1]!];
    if (length === undefined) continue;
    // The country fixes the length, so read exactly that many characters (single spaces allowed between
    // them) instead of letting a pattern run into the next word.
    let need = length - 4;
    let i = m.index + 4;
    while (need > 0 && i < text.length) {
      const ch = text[i]!;
      if (/[A-Z0-9]/.test(ch)) {
        need--;
        i++;
      } else if (ch === ' ' && /[A-Z0-9]/.test(text[i + 1] ?? '')) i++;
      else break;
    }
    if (need > 0 || /[\p{L}\p{N}_]/u.test(text[i] ?? '')) continue;
    if (ibanValid(text.slice(m.index, i))) out.push({ kind: 'iban', start: m.index, end: i });
  }
}

const IPV4_CANDIDATE = /(?<![\p{L}\p{N}_.])\d{1,3}(?:\.\d{1,3}){3}(?![\p{L}\p{N}_]|\.\p{N})/gu;
/**
 * A dotted quad is an IP address (1.2.3.4 is a valid one, and leaving an address unredacted costs more than
 * masking a version string) unless it is written as a version: `v1.2.3.4` (a letter before it is never an
 * address) or after the words version / ver / release / build.
 */
const VERSION_CONTEXT = /\b(?:version|ver\.?|release|build|firmware|fw)\s*[:#]?\s*$/i;
/** Whole runs of hex digits, colons and dots no longer than an address (45): IPv6 candidates for `isIP`. */
const IPV6_CANDIDATE = /(?<![\p{L}\p{N}_:.])[0-9A-Fa-f:.]{2,45}(?![0-9A-Fa-f:.])(?:%[\w.-]{1,32})?/gu;

function scanIps(text: string, out: Span[]): void {
  for (const m of text.matchAll(IPV4_CANDIDATE)) {
    if (isIP(m[0]) !== 4) continue;
    if (VERSION_CONTEXT.test(text.slice(Math.max(0, m.index - 16), m.index))) continue;
    out.push({ kind: 'ip', start: m.index, end: m.index + m[0].length });
  }
  for (const m of text.matchAll(IPV6_CANDIDATE)) {
    let candidate = m[0];
    // A sentence may end right after an address.
    while (candidate.endsWith('.')) candidate = candidate.slice(0, -1);
    const end = m.index + candidate.length;
    if (/[\p{L}\p{N}_]/u.test(text[end] ?? '')) continue;
    // `dead::beef`-style identifiers (C++ scopes, hex words) parse as IPv6; real addresses have a digit.
    if (candidate.indexOf(':') === candidate.lastIndexOf(':') || !/\d/.test(candidate)) continue;
    if (isIP(candidate) !== 6) continue;
    out.push({ kind: 'ip', start: m.index, end });
  }
}

// --- national identifiers -----------------------------------------------------------------------------------

/**
 * Words right before a number that say it is a reference of some other kind (`Order 123-45-6789`,
 * `invoice #123 456 782`): an identifier-shaped order number is not a person's identifier.
 */
const REFERENCE_CONTEXT =
  /\b(?:order|invoice|inv|ticket|ref|reference|tracking|part|sku|model|serial|case|po|item|batch|lot|confirmation|booking|claim|policy|routing|isbn|fax|tel|phone|call)\s*(?:no\.?|num(?:ber)?|id)?\s*[:#]?\s*#?\s*$/i;
/** Words that announce a US SSN, so nine undelimited digits after them are read as one. */
const SSN_CONTEXT = /\b(?:ssn|ss#|ss no\.?|social security(?: number| no\.?| #)?)\s*[:#]?\s*$/i;
/** Words that announce a Canadian SIN, so nine undelimited digits after them are read as one. */
const SIN_CONTEXT = /\b(?:sin|social insurance(?: number| no\.?| #)?|nas)\s*[:#]?\s*$/i;
const CONTEXT_CHARS = 32;

function before(text: string, index: number): string {
  return text.slice(Math.max(0, index - CONTEXT_CHARS), index);
}

/** `AAA-GG-SSSS` or `AAA GG SSSS` (one separator throughout), or nine digits right after "SSN". */
const SSN_CANDIDATE =
  /(?<![\p{L}\p{N}_.,+/-]|\p{N}[ -])(?:(\d{3})([- ])(\d{2})\2(\d{4})|(\d{3})(\d{2})(\d{4}))(?![\p{L}\p{N}_]|[ .,/-]\p{N})/gu;
/**
 * SSA rules since 2011: the area is not 000, 666 or 900–999, the group not 00, the serial not 0000. Example
 * numbers (`123-45-6789`) are kept: masking one costs nothing, and they stand in for real ones in test data.
 */
export function ssnValid(digits: string): boolean {
  if (!/^\d{9}$/.test(digits)) return false;
  const area = Number(digits.slice(0, 3));
  return (
    area !== 0 && area !== 666 && area < 900 && digits.slice(3, 5) !== '00' && digits.slice(5) !== '0000'
  );
}

function scanSsns(text: string, out: Span[]): void {
  for (const m of text.matchAll(SSN_CANDIDATE)) {
    const grouped = m[1] !== undefined;
    const digits = grouped ? `${m[1]}${m[3]}${m[4]}` : `${m[5]}${m[6]}${m[7]}`;
    if (!ssnValid(digits)) continue;
    const context = before(text, m.index);
    if (grouped ? REFERENCE_CONTEXT.test(context) : !SSN_CONTEXT.test(context)) continue;
    out.push({ kind: 'ssn', start: m.index, end: m.index + m[0].length });
  }
}

/**
 * UK National Insurance number: two prefix letters, six digits and a suffix A–D, written in one piece or
 * as `AB 12 34 56 C`. HMRC never allocates D, F, I, Q, U, V as either prefix letter, O as the second, nor the
 * prefixes BG, GB, KN, NK, NT, TN and ZZ (so the `QQ 12 34 56 C` of forms and manuals is not a match).
 */
const NINO_CANDIDATE =
  /(?<![\p{L}\p{N}_])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z])( ?)(\d{2})\2(\d{2})\2(\d{2})\2([A-D])(?![\p{L}\p{N}_])/gu;
const NINO_UNUSED_PREFIXES = new Set(['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ']);

export function ninoValid(nino: string): boolean {
  const s = nino.replace(/ /g, '');
  return (
    /^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$/.test(s) && !NINO_UNUSED_PREFIXES.has(s.slice(0, 2))
  );
}

function scanNinos(text: string, out: Span[]): void {
  for (const m of text.matchAll(NINO_CANDIDATE)) {
    if (NINO_UNUSED_PREFIXES.has(m[1]!)) continue;
    out.push({ kind: 'nino', start: m.index, end: m.index + m[0].length });
  }
}

/** `123-456-782` or `123 456 782` (one separator throughout), or nine digits right after "SIN". */
const SIN_CANDIDATE =
  /(?<![\p{L}\p{N}_.,+/-]|\p{N}[ -])(?:(\d{3})([- ])(\d{3})\2(\d{3})|(\d{9}))(?![\p{L}\p{N}_]|[ .,/-]\p{N})/gu;

/**
 * Canadian Social Insurance Number: nine digits passing Luhn, first digit 1–7 (by province) or 9 (temporary
 * residents); 0 and 8 are never issued.
 */
export function sinValid(digits: string): boolean {
  return /^[1-79]\d{8}$/.test(digits) && luhnValid(digits);
}

function scanSins(text: string, out: Span[]): void {
  for (const m of text.matchAll(SIN_CANDIDATE)) {
    const grouped = m[1] !== undefined;
    const digits = grouped ? `${m[1]}${m[3]}${m[4]}` : m[5]!;
    if (!sinValid(digits)) continue;
    const context = before(text, m.index);
    if (grouped ? REFERENCE_CONTEXT.test(context) : !SIN_CONTEXT.test(context)) continue;
    out.push({ kind: 'sin', start: m.index, end: m.index + m[0].length });
  }
}

// --- the detector -------------------------------------------------------------------------------------------

/** On equal length, the kind whose check is stricter wins (lower = more specific). */
const SPECIFICITY: Record<BuiltinPiiKind, number> = {
  email: 0,
  iban: 1,
  card: 2,
  nino: 3,
  sin: 4,
  ssn: 5,
  ip: 6,
  phone: 7,
};
const CUSTOM_SPECIFICITY = 8;

function compileCustom(p: CustomPattern): RegExp {
  const flags = [...new Set(`${p.flags ?? ''}g`.replace(/y/g, ''))].join('');
  try {
    return new RegExp(p.pattern, flags);
  } catch (e) {
    throw new QuarryError(
      'INVALID_CONFIG',
      `privacy.custom pattern "${p.name}" (/${p.pattern}/${p.flags ?? ''}) is not a valid regular expression: ${(e as Error).message}`,
      { pattern: p.name, source: p.pattern, flags: p.flags },
      e,
    );
  }
}

export function createPiiDetector(options: PiiDetectorOptions = {}): PiiDetector {
  const kinds = new Set<BuiltinPiiKind>(options.kinds ?? BUILTIN_PII_KINDS);
  for (const k of kinds) {
    if (!(BUILTIN_PII_KINDS as readonly string[]).includes(k)) {
      throw new QuarryError('INVALID_CONFIG', `privacy.kinds: unknown PII kind "${k}"`, { kind: k });
    }
  }
  let region: CountryCode | undefined;
  if (options.phoneRegion !== undefined) {
    if (!phones().isSupportedCountry(options.phoneRegion)) {
      throw new QuarryError(
        'INVALID_CONFIG',
        `privacy.phoneRegion: "${options.phoneRegion}" is not a supported region`,
        {
          phoneRegion: options.phoneRegion,
        },
      );
    }
    region = options.phoneRegion;
  }
  const custom: Array<{ name: string; re: RegExp }> = [];
  const names = new Set<string>(BUILTIN_PII_KINDS);
  for (const p of options.custom ?? []) {
    const parsed = CustomPatternSchema.safeParse(p);
    if (!parsed.success) {
      throw new QuarryError(
        'INVALID_CONFIG',
        `privacy.custom pattern "${p.name}": ${parsed.error.issues[0]?.message}`,
        {
          pattern: p.name,
        },
      );
    }
    if (names.has(p.name.toLowerCase())) {
      const builtin = (BUILTIN_PII_KINDS as readonly string[]).includes(p.name.toLowerCase());
      throw new QuarryError(
        'INVALID_CONFIG',
        `privacy.custom pattern name "${p.name}" is already taken${builtin ? ` by the built-in kind "${p.name.toLowerCase()}" (list it in privacy.kinds, or rename the pattern)` : ''}`,
        { pattern: p.name },
      );
    }
    names.add(p.name.toLowerCase());
    custom.push({ name: p.name, re: compileCustom(p) });
  }

  return {
    kinds: [...kinds, ...custom.map((c) => c.name)],
    detect(text: string): PiiFinding[] {
      const spans: Span[] = [];
      if (kinds.has('email')) scanEmails(text, spans);
      if (kinds.has('card')) scanCards(text, spans);
      if (kinds.has('iban')) scanIbans(text, spans);
      if (kinds.has('ip')) scanIps(text, spans);
      if (kinds.has('ssn')) scanSsns(text, spans);
      if (kinds.has('nino')) scanNinos(text, spans);
      if (kinds.has('sin')) scanSins(text, spans);
      // Last: the slowest scanner skips what the others already found.
      if (kinds.has('phone')) scanPhones(text, region, spans);
      for (const c of custom) {
        for (const m of text.matchAll(c.re)) {
          if (m[0].length > 0) spans.push({ kind: c.name, start: m.index, end: m.index + m[0].length });
        }
      }
      return resolveOverlaps(text, spans).map((s) => ({ ...s, text: text.slice(s.start, s.end) }));
    },
  };
}

/** Longest span first, then the most specific kind; a span overlapping a chosen one (or a placeholder) goes. */
function resolveOverlaps(text: string, spans: Span[]): Span[] {
  const rank = (k: string) => SPECIFICITY[k as BuiltinPiiKind] ?? CUSTOM_SPECIFICITY;
  const ordered = [...spans].sort(
    (a, b) => b.end - b.start - (a.end - a.start) || rank(a.kind) - rank(b.kind) || a.start - b.start,
  );
  // Chosen spans, sorted by start and disjoint, so one binary search tells whether a new span overlaps.
  const taken: Array<Span & { placeholder?: true }> = [];
  for (const m of text.matchAll(PLACEHOLDER_PATTERN)) {
    taken.push({ kind: '', start: m.index, end: m.index + m[0].length, placeholder: true });
  }
  for (const s of ordered) {
    let lo = 0;
    let hi = taken.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (taken[mid]!.end <= s.start) lo = mid + 1;
      else hi = mid;
    }
    const next = taken[lo];
    if (next === undefined || next.start >= s.end) taken.splice(lo, 0, s);
  }
  return taken.filter((t) => !t.placeholder);
}

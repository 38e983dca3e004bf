/**
 * PII detection on real text: each kind on tricky positives and near-miss negatives (checksums, ranges,
 * versions, dates, ISBNs, offsets), exact offsets, overlap resolution, custom patterns and their errors,
 * and a property test that mask redaction of random text removes every embedded value and nothing else.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPiiDetector, ibanValid, luhnValid, type PiiDetectorOptions } from '../../src/privacy/pii.js';
import { createRedactor } from '../../src/privacy/redact.js';
import { thrownBy as configError } from '../fixtures/rejection.js';

function found(text: string, opts: PiiDetectorOptions = {}): Array<[string, string]> {
  return createPiiDetector({ phoneRegion: 'US', ...opts })
    .detect(text)
    .map((f) => [f.kind, f.text]);
}

describe('checksums', () => {
  it('Luhn accepts test card numbers and rejects a changed digit', () => {
    for (const n of ['4111111111111111', '5555555555554444', '378282246310005', '6011111111111117']) {
      expect(luhnValid(n)).toBe(true);
      const last = Number(n.at(-1));
      expect(luhnValid(n.slice(0, -1) + String((last + 1) % 10))).toBe(false);
    }
  });

  it('IBAN needs a known country, its exact length and mod-97 = 1', () => {
    expect(ibanValid('DE89 3704 0044 0532 0130 00')).toBe(true);
    expect(ibanValid('GB82WEST12345698765432')).toBe(true);
    expect(ibanValid('FR1420041010050500013M02606')).toBe(true);
    expect(ibanValid('NO9386011117947')).toBe(true);
    expect(ibanValid('DE89 3704 0044 0532 0130 01')).toBe(false); // checksum
    expect(ibanValid('DE89 3704 0044 0532 0130 0')).toBe(false); // length
    expect(ibanValid('QQ89370400440532013000')).toBe(false); // no such country
  });
});

describe('detection', () => {
  it('finds e-mail addresses without the prose around them', () => {
    const text = "Write to alice.smith+tag@example.co.uk, (bob@corp.io) or 'carol@x.org'. mailto:dave@y.com.";
    expect(found(text)).toEqual([
      ['email', 'alice.smith+tag@example.co.uk'],
      ['email', 'bob@corp.io'],
      ['email', 'carol@x.org'],
      ['email', 'dave@y.com'],
    ]);
    expect(found('user@localhost, a@b.c, foo@bar, @handle, name@.com')).toEqual([]);
  });

  it('finds phone numbers in national and international formats', () => {
    const text =
      'US (415) 555-2671, 415.555.2671, 415-555-2671 and +1 415 555 2671; ' +
      'UK +44 20 7946 0958; FR +33 1 42 68 53 00; DE +49 30 901820.';
    expect(found(text)).toEqual([
      ['phone', '(415) 555-2671'],
      ['phone', '415.555.2671'],
      ['phone', '415-555-2671'],
      ['phone', '+1 415 555 2671'],
      ['phone', '+44 20 7946 0958'],
      ['phone', '+33 1 42 68 53 00'],
      ['phone', '+49 30 901820'],
    ]);
  });

  it('reads national numbers with the configured region, international ones with any', () => {
    const text = 'London office: 020 7946 0958, New York: +1 212 555 0199';
    expect(found(text, { phoneRegion: 'GB' })).toEqual([
      ['phone', '020 7946 0958'],
      ['phone', '+1 212 555 0199'],
    ]);
    expect(found(text, { phoneRegion: 'US' })).toEqual([['phone', '+1 212 555 0199']]);
    expect(found(text, { phoneRegion: undefined })).toEqual([['phone', '+1 212 555 0199']]);
  });

  it('takes a card only when it passes Luhn, in any usual grouping', () => {
    const text =
      'Visa 4111 1111 1111 1111, MC 5555-5555-5555-4444, Amex 3782 822463 10005, raw 4111111111111111; ' +
      'typo 4111 1111 1111 1112, raw typo 4111111111111112.';
    expect(found(text)).toEqual([
      ['card', '4111 1111 1111 1111'],
      ['card', '5555-5555-5555-4444'],
      ['card', '3782 822463 10005'],
      ['card', '4111111111111111'],
    ]);
  });

  it('keeps a trailing CVV or reference number out of the card', () => {
    expect(found('card 4111 1111 1111 1111 123 on file')).toEqual([['card', '4111 1111 1111 1111']]);
  });

  it('finds IBANs printed or compact, and rejects a bad checksum', () => {
    const text =
      'Pay DE89 3704 0044 0532 0130 00 AND GB82WEST12345698765432 or FR14 2004 1010 0505 0001 3M02 606. ' +
      'Wrong: DE89 3704 0044 0532 0130 01, DE89370400440532013000123.';
    expect(found(text)).toEqual([
      ['iban', 'DE89 3704 0044 0532 0130 00'],
      ['iban', 'GB82WEST12345698765432'],
      ['iban', 'FR14 2004 1010 0505 0001 3M02 606'],
    ]);
  });

  it('finds IPv4 addresses with octets ≤ 255 and IPv6 addresses that node:net accepts', () => {
    const text =
      'Hosts 192.168.1.1, 10.0.0.1:8080 and 8.8.8.8. Not 256.1.1.1 or 300.2.3.4 or 1.2.3.4.5. ' +
      'v6: 2001:db8::1, fe80::1%eth0, ::1. and ::ffff:192.0.2.1; ' +
      'not std::map, dead::beef, 12:30:45 or the MAC 00:1a:2b:3c:4d:5e.';
    expect(found(text)).toEqual([
      ['ip', '192.168.1.1'],
      ['ip', '10.0.0.1'],
      ['ip', '8.8.8.8'],
      ['ip', '2001:db8::1'],
      ['ip', 'fe80::1%eth0'],
      ['ip', '::1'],
      ['ip', '::ffff:192.0.2.1'],
    ]);
  });

  it('reads a dotted quad as a version when it is written as one, otherwise as an address', () => {
    expect(found('Upgrade to version 1.2.3.4 or v2.0.1.7; release: 4.4.0.1 and build 1.0.0.12')).toEqual([]);
    expect(found('ping 1.2.3.4 now')).toEqual([['ip', '1.2.3.4']]);
  });

  it('leaves dates, ISBNs, chunk offsets, timestamps and section numbers alone', () => {
    const text =
      'On 2024-03-15 (15/03/2024, 2024.03.15) see ISBN 978-3-16-148410-0 / 9783161484100, ' +
      'chunk 141, chars 2043–2208, offsets 12345..67890, ts 1700000000000, §4.5.6, port 8080, 3.14159.';
    expect(found(text)).toEqual([]);
  });

  it('does not read rows of a number table as cards or phone numbers', () => {
    const table = Array.from({ length: 400 }, (_, i) => `${i} ${i * 7} ${i * 13} ${1000 + i}`).join(' ');
    expect(found(table)).toEqual([]);
  });

  it('scans long blobs without a rescan from every character', () => {
    // Quadratic scanning of these would take minutes and hit the test timeout; linear takes milliseconds.
    const blobs = [
      randomBytes(150_000).toString('base64'),
      randomBytes(50_000).toString('hex').replace(/(..)/g, '$1:'),
      'a@'.repeat(100_000),
      `${'a'.repeat(200_000)}@example.com`,
      '1.'.repeat(2_000),
    ];
    for (const blob of blobs) expect(found(` ${blob} `)).toEqual([]);
  });

  it('reports exact offsets, also after astral characters', () => {
    const text = '🎉 Mail zoë 😀 alice@example.com, call +44 20 7946 0958 👍 card 4111-1111-1111-1111.';
    const findings = createPiiDetector({ phoneRegion: 'US' }).detect(text);
    expect(findings.map((f) => f.kind)).toEqual(['email', 'phone', 'card']);
    for (const f of findings) {
      expect(text.slice(f.start, f.end)).toBe(f.text);
      expect(f.start).toBe(text.indexOf(f.text));
    }
  });

  it('resolves overlaps: the longest value wins, then the most specific kind', () => {
    // The card digits are also a custom "account" match and contain an IP-free digit run a phone reader sees.
    const det = createPiiDetector({
      phoneRegion: 'US',
      custom: [{ name: 'account', pattern: '\\d{4} \\d{4}' }],
    });
    expect(det.detect('card 4111 1111 1111 1111').map((f) => [f.kind, f.text])).toEqual([
      ['card', '4111 1111 1111 1111'],
    ]);
    // An address inside an e-mail is part of the e-mail.
    expect(found('root@192.168.1.1.example.com')).toEqual([['email', 'root@192.168.1.1.example.com']]);
  });

  it('finds only the configured kinds', () => {
    const text = 'alice@example.com 10.0.0.1 4111111111111111';
    expect(found(text, { kinds: ['ip'] })).toEqual([['ip', '10.0.0.1']]);
  });

  it('runs custom patterns with their flags and names the kind after them', () => {
    const det = createPiiDetector({
      custom: [
        { name: 'employee_id', pattern: 'emp-\\d{6}', flags: 'i' },
        { name: 'badge', pattern: '\\bB-\\d{4}\\b' },
      ],
    });
    expect(det.kinds).toContain('employee_id');
    expect(det.detect('EMP-123456 and emp-654321, badge B-1120.').map((f) => [f.kind, f.text])).toEqual([
      ['employee_id', 'EMP-123456'],
      ['employee_id', 'emp-654321'],
      ['badge', 'B-1120'],
    ]);
  });

  it('rejects an invalid custom regex with INVALID_CONFIG naming the pattern', () => {
    const e = configError(() => createPiiDetector({ custom: [{ name: 'ticket', pattern: 'TK-(\\d+' }] }));
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.message).toContain('"ticket"');
    expect(e.message).toContain('TK-(\\d+');
    expect(e.details.pattern).toBe('ticket');
    expect(
      configError(() => createPiiDetector({ custom: [{ name: 'x', pattern: 'a', flags: 'q' }] })).code,
    ).toBe('INVALID_CONFIG');
    expect(
      configError(() => createPiiDetector({ custom: [{ name: 'email', pattern: 'a' }] })).message,
    ).toContain('already taken');
    expect(configError(() => createPiiDetector({ phoneRegion: 'XX' })).code).toBe('INVALID_CONFIG');
  });
});

// --- property: redaction removes every embedded value and keeps everything else ---------------------------

const WORDS = [
  'the',
  'quick',
  'report',
  'notes',
  'alpha',
  'meeting',
  'x86',
  'v2',
  '2024',
  'page',
  '42',
  'ok,',
];
const filler = fc
  .array(fc.constantFrom(...WORDS), { minLength: 0, maxLength: 6 })
  // Pieces start and end with a letter word, so a digit never sits next to a value and changes what it is.
  .map((ws) => ['note', ...ws, 'done'].join(' '));

const digits = (n: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n });
const luhnDigit = (body: string) => {
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return String(d);
  throw new Error('unreachable');
};
const card = fc
  .tuple(fc.constantFrom('4', '51', '55', '6011'), digits(14), fc.constantFrom('', ' ', '-'))
  .map(([prefix, ds, sep]) => {
    const body = (prefix + ds.join('')).slice(0, 15);
    const n = body + luhnDigit(body);
    return sep === '' ? n : (n.match(/.{4}/g) ?? []).join(sep);
  });
const iban = fc
  .tuple(fc.constantFrom('DE', 'GB', 'NL', 'FR', 'ES', 'NO'), digits(30), fc.boolean())
  .map(([cc, ds, spaced]) => {
    const bban = ds
      .join('')
      .slice(0, ({ DE: 22, GB: 22, NL: 18, FR: 27, ES: 24, NO: 15 } as Record<string, number>)[cc]! - 4);
    const numeric = [...`${bban}${cc}00`]
      .map((c) => (/\d/.test(c) ? c : String(c.charCodeAt(0) - 55)))
      .join('');
    let rem = 0;
    for (const c of numeric) rem = (rem * 10 + Number(c)) % 97;
    const compact = `${cc}${String(98 - rem).padStart(2, '0')}${bban}`;
    return spaced ? (compact.match(/.{1,4}/g) ?? []).join(' ') : compact;
  });
const email = fc
  .tuple(
    fc.stringMatching(/^[a-z][a-z0-9]{0,8}(\.[a-z0-9]{1,6})?$/),
    fc.stringMatching(/^[a-z]{2,10}$/),
    fc.constantFrom('com', 'org', 'io', 'de', 'co.uk'),
  )
  .map(([local, domain, tld]) => `${local}@${domain}.${tld}`);
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const ipv6 = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 6, maxLength: 6 })
  .map((gs) => `2001:db8:${gs.map((g) => g.toString(16)).join(':')}`);
const phone = fc
  .tuple(
    fc.constantFrom('212', '415', '617', '312'),
    fc.integer({ min: 200, max: 999 }),
    digits(4),
    fc.nat(2),
  )
  .filter(([, exchange]) => exchange !== 555)
  .map(([area, ex, line, style]) =>
    style === 0
      ? `(${area}) ${ex}-${line.join('')}`
      : style === 1
        ? `+1 ${area} ${ex} ${line.join('')}`
        : `${area}-${ex}-${line.join('')}`,
  );

const KIND_OF = { email, card, iban, ip: fc.oneof(ipv4, ipv6), phone } as const;
const pii = fc.oneof(...Object.entries(KIND_OF).map(([kind, arb]) => arb.map((value) => ({ kind, value }))));

describe('mask redaction (property)', () => {
  const redactor = createRedactor(
    { enabled: true, mode: 'mask', phoneRegion: 'US' },
    { storeDir: '/nonexistent' },
  );
  const detector = createPiiDetector({ phoneRegion: 'US' });

  it('replaces every embedded value with its kind and leaves the text between them untouched', () => {
    fc.assert(
      fc.property(filler, fc.array(fc.tuple(pii, filler), { maxLength: 6 }), (head, rest) => {
        const text = head + rest.map(([p, f]) => ` ${p.value} ${f}`).join('');
        const expected = head + rest.map(([p, f]) => ` [${p.kind.toUpperCase()}] ${f}`).join('');
        const out = redactor.redact(text);
        expect(out.text).toBe(expected);
        expect(out.findings.map((f) => f.kind)).toEqual(rest.map(([p]) => p.kind));
        for (const [p] of rest) expect(out.text).not.toContain(p.value);
        expect(detector.detect(out.text)).toEqual([]);
        // Findings point at the originals in the input and at the placeholders in the output.
        for (const [i, f] of out.findings.entries()) {
          expect(text.slice(f.start, f.end)).toBe(rest[i]![0].value);
          expect(out.text.slice(f.outStart, f.outEnd)).toBe(`[${f.kind.toUpperCase()}]`);
        }
      }),
      { numRuns: 300 },
    );
  });
});

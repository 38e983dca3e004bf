/**
 * National identifiers on real text: US Social Security numbers, UK National Insurance numbers and Canadian
 * Social Insurance Numbers, each on positives and on near misses that share their shape (dates, phone
 * numbers, order and reference numbers, unissued ranges, failed checksums), and through redaction.
 */
import { describe, expect, it } from 'vitest';
import { createPiiDetector, ninoValid, sinValid, ssnValid } from '../../src/privacy/pii.js';
import { createRedactor } from '../../src/privacy/redact.js';

function found(text: string): Array<[string, string]> {
  return createPiiDetector({ phoneRegion: 'US' })
    .detect(text)
    .map((f) => [f.kind, f.text]);
}

describe('US Social Security numbers', () => {
  it('finds dashed and spaced SSNs, and undelimited ones after "SSN"', () => {
    expect(found('Applicant SSN 123-45-6789, spouse 536-22-1937.')).toEqual([
      ['ssn', '123-45-6789'],
      ['ssn', '536-22-1937'],
    ]);
    expect(found('social security number: 536 22 1937')).toEqual([['ssn', '536 22 1937']]);
    expect(found('SSN: 536221937 on file')).toEqual([['ssn', '536221937']]);
    expect(found('(536-22-1937)')).toEqual([['ssn', '536-22-1937']]);
  });

  it('applies the SSA rules: no area 000, 666 or 9xx, no group 00, no serial 0000', () => {
    expect(ssnValid('536221937')).toBe(true);
    for (const n of ['000221937', '666221937', '900221937', '999221937', '536001937', '536220000'])
      expect(ssnValid(n)).toBe(false);
    expect(found('000-12-3456 666-12-3456 912-12-3456 536-00-1234 536-22-0000')).toEqual([]);
  });

  it('leaves dates, phone numbers, order numbers and longer numbers alone', () => {
    expect(found('Released 2024-01-15, patched 01-15-2024.')).toEqual([]);
    expect(found('Call 415-555-2671.')).toEqual([['phone', '415-555-2671']]);
    expect(found('Order 536-22-1937 shipped; invoice #536-22-1937; ticket no. 536 22 1937.')).toEqual([]);
    expect(found('part 1-536-22-1937, serial 536-22-19370, 536-22-1937-4, 536-22-1937/2')).toEqual([]);
    // Nine bare digits are an SSN only when announced as one.
    expect(found('account 536221937, id 536221937')).toEqual([]);
    // A mixed separator is not how an SSN is written.
    expect(found('536-22 1937')).toEqual([]);
  });
});

describe('UK National Insurance numbers', () => {
  it('finds NINOs written in one piece or in pairs', () => {
    expect(found('NI number AB 12 34 56 C, or AB123456D.')).toEqual([
      ['nino', 'AB 12 34 56 C'],
      ['nino', 'AB123456D'],
    ]);
  });

  it('rejects prefixes HMRC never allocates, suffixes other than A-D and mixed spacing', () => {
    expect(ninoValid('AB123456C')).toBe(true);
    for (const n of ['QQ123456C', 'GB123456A', 'ZZ123456A', 'DA123456A', 'AO123456A', 'AB123456E'])
      expect(ninoValid(n)).toBe(false);
    expect(found('QQ 12 34 56 C (the form example), GB123456A, DA123456A, AB123456E')).toEqual([]);
    expect(found('AB 123456 C, AB12 34 56C, XAB123456C, AB123456CX')).toEqual([]);
  });
});

describe('Canadian Social Insurance Numbers', () => {
  it('finds grouped SINs that pass Luhn, and nine digits after "SIN"', () => {
    expect(found('Her SIN is 130 692 544; his is 130-692-544.')).toEqual([
      ['sin', '130 692 544'],
      ['sin', '130-692-544'],
    ]);
    expect(found('SIN: 130692544')).toEqual([['sin', '130692544']]);
  });

  it('rejects a failed checksum, unissued first digits, table rows and references', () => {
    expect(sinValid('130692544')).toBe(true);
    expect(sinValid('130692545')).toBe(false); // Luhn
    expect(sinValid('046454286')).toBe(false); // 0 is never issued (the CRA's own example)
    expect(sinValid('812345678')).toBe(false);
    expect(found('130 692 545, 046 454 286')).toEqual([]);
    expect(found('row 130 692 544 100 and 7 130 692 544')).toEqual([]);
    expect(found('Ref 130-692-544, tel 130 692 544')).toEqual([]);
    expect(found('id 130692544')).toEqual([]);
  });
});

describe('redaction of national identifiers', () => {
  it('masks each kind with its own label, and can be turned off per kind', () => {
    const text = 'SSN 536-22-1937, NINO AB 12 34 56 C, SIN 130 692 544, mail a.b@example.org';
    const r = createRedactor({ enabled: true }, { storeDir: '.' });
    expect(r.redact(text).text).toBe('SSN [SSN], NINO [NINO], SIN [SIN], mail [EMAIL]');
    const emailOnly = createRedactor({ enabled: true, kinds: ['email'] }, { storeDir: '.' });
    expect(emailOnly.redact(text).text).toBe(
      'SSN 536-22-1937, NINO AB 12 34 56 C, SIN 130 692 544, mail [EMAIL]',
    );
  });
});

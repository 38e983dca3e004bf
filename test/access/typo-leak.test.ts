/**
 * Typo correction never reveals a hidden document's words: a misspelling is corrected only towards a word of
 * a document the search may return, so a principal that cannot read the document holding "zanthorix" is not
 * told, through "searched for zanthorix instead of zanthorex", that the word exists.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANONYMOUS, TRUSTED_LOCAL, userPrincipal } from '../../src/access/principal.js';
import { Quarry } from '../../src/pipeline/quarry.js';

let dir: string;
let q: Quarry;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-typo-leak-'));
  q = Quarry.open({ store: dir });
  await q.addDocuments([
    { id: 'public', markdown: '# Ferry\n\nThe ferry timetable changes in winter; the kiosk sells tickets.' },
    {
      id: 'secret',
      markdown: '# Project\n\nProject zanthorix ships in March.',
      access: { groups: ['exec'] },
    },
  ]);
});
afterAll(() => {
  q.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('typo correction and access', () => {
  it('does not correct towards a word only hidden documents hold', async () => {
    for (const principal of [ANONYMOUS, userPrincipal({ groups: ['sales'] })]) {
      const r = await q.search('zanthorex', { principal, cache: false });
      expect(r.rewrite).toBeUndefined();
      expect(JSON.stringify(r)).not.toContain('zanthorix');
    }
  });

  it('corrects towards it for principals that may read the document, and for the owner', async () => {
    for (const principal of [userPrincipal({ groups: ['exec'] }), TRUSTED_LOCAL]) {
      const r = await q.search('zanthorex', { principal, cache: false });
      expect(r.rewrite?.corrections).toEqual([{ from: 'zanthorex', to: 'zanthorix' }]);
      expect(r.hits[0]?.document.id).toBe('secret');
    }
  });

  it('still corrects towards visible words', async () => {
    const r = await q.search('kiosck', { principal: ANONYMOUS, cache: false });
    expect(r.rewrite?.corrections).toEqual([{ from: 'kiosck', to: 'kiosk' }]);
  });
});

/**
 * The handbook the browser tests and the screenshots run over: the server tests' four documents (two of
 * them restricted to groups) plus enough short public pages that the built-in dense embedder trains (it
 * needs twenty chunks), so traces show BM25, dense and fused scores side by side; and a BEIR-layout set
 * of judged questions over its public pages, for recording eval runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DocumentInput } from '../../src/ingest/add-documents.js';
import { HANDBOOK } from '../server/harness.js';

const PAGES: Array<[id: string, title: string, body: string, tags?: string[]]> = [
  [
    'holidays',
    'Holiday allowance',
    'Every employee gets 28 days of paid holiday a year, including public holidays. Unused days carry over until the end of March.',
    ['hr-policy'],
  ],
  [
    'sick-leave',
    'Sick leave',
    "Tell your manager before 10:00 on the first day of sickness. A doctor's note is needed after seven calendar days.",
    ['hr-policy'],
  ],
  [
    'expenses',
    'Expense claims',
    'Submit expense claims with receipts within 30 days. Claims above 500 pounds need approval from a director.',
    ['finance'],
  ],
  [
    'travel',
    'Business travel',
    'Book trains in standard class and flights in economy. Hotels up to 150 pounds a night are approved automatically.',
    ['finance'],
  ],
  [
    'laptops',
    'Laptops and equipment',
    'New starters receive a laptop on their first day. Report lost or stolen equipment to the service desk within 24 hours.',
    ['it'],
  ],
  [
    'passwords',
    'Password policy',
    'Passwords must be at least 14 characters long. Use the company password manager and turn on two-factor authentication.',
    ['it'],
  ],
  [
    'vpn',
    'Remote access',
    'Connect to the VPN before opening internal tools from home. The VPN client disconnects after eight idle hours.',
    ['it'],
  ],
  [
    'office-hours',
    'Office opening hours',
    'The Glasgow office is open from 07:30 to 19:00 on weekdays. The building is closed at weekends and on public holidays.',
    ['facilities'],
  ],
  [
    'parking',
    'Car parking',
    'There are forty parking spaces behind the office. Spaces are first come, first served; electric chargers are in row C.',
    ['facilities'],
  ],
  [
    'canteen',
    'Canteen',
    'The canteen serves breakfast from 08:00 to 10:00 and lunch from 12:00 to 14:00. Vegetarian and vegan dishes are offered daily.',
    ['facilities'],
  ],
  [
    'security',
    'Building security',
    'Wear your badge at all times inside the building. Visitors sign in at reception and are escorted by their host.',
    ['facilities'],
  ],
  [
    'fire',
    'Fire safety',
    'The fire alarm is tested every Tuesday at 11:00. On a real alarm, leave by the nearest exit and meet at the car park assembly point.',
    ['facilities'],
  ],
  [
    'onboarding',
    'Onboarding',
    'In the first week new starters meet their buddy, finish the security training and set up their development environment.',
    ['hr-policy'],
  ],
  [
    'training',
    'Training budget',
    'Each employee has a training budget of 1,200 pounds a year for courses, conferences and books.',
    ['hr-policy'],
  ],
  [
    'pension',
    'Pension scheme',
    'The company pays 6 percent of salary into the pension scheme when the employee contributes at least 4 percent.',
    ['finance'],
  ],
  [
    'payday',
    'Pay day',
    'Salaries are paid on the last working day of each month. Payslips are available in the HR portal two days earlier.',
    ['finance'],
  ],
  [
    'remote-work',
    'Remote working',
    'Staff may work from home up to three days a week after agreeing a pattern with their manager.',
    ['hr-policy'],
  ],
  [
    'meeting-rooms',
    'Meeting rooms',
    'Book meeting rooms in the calendar. Rooms booked but not used within fifteen minutes are released automatically.',
    ['facilities'],
  ],
  [
    'printing',
    'Printing',
    'Printers are on every floor. Print jobs are held until you tap your badge at the printer.',
    ['it'],
  ],
  [
    'incident',
    'Incident response',
    'Report a security incident to the on-call engineer at once. The incident commander opens a channel and posts updates every thirty minutes.',
    ['it'],
  ],
  [
    'code-review',
    'Code review',
    'Every change needs one approving review before it is merged. Reviewers answer within one working day.',
    ['engineering'],
  ],
  [
    'releases',
    'Release process',
    "Releases go out on Wednesdays after the staging checks pass. Hotfixes may be released any day with the on-call engineer's approval.",
    ['engineering'],
  ],
];

export const UI_HANDBOOK: DocumentInput[] = [
  ...HANDBOOK,
  ...PAGES.map(([id, title, body, tags]) => ({
    id,
    markdown: `# ${title}\n\n${body}`,
    ...(tags === undefined ? {} : { metadata: { tags } }),
  })),
];

/** Judged questions over the public pages: query id, text, the relevant documents (some are hard on purpose). */
export const HANDBOOK_QUERIES: Array<[id: string, text: string, relevant: string[]]> = [
  ['q1', 'ferry timetable to Islay', ['ferry']],
  ['q2', 'when will my money come back after a return', ['refunds']],
  ['q3', 'how many vacation days do I get', ['holidays']],
  ['q4', 'I feel unwell, who do I tell', ['sick-leave']],
  ['q5', 'approval for large expense claims', ['expenses', 'travel']],
  ['q6', 'minimum password length', ['passwords']],
  ['q7', 'where do I charge an electric car', ['parking']],
  ['q8', 'what is on the menu today', ['canteen']],
  ['q9', 'what to do when the alarm rings', ['fire']],
  ['q10', 'budget for conferences and books', ['training']],
  ['q11', 'working from home', ['remote-work', 'vpn']],
  ['q12', 'who approves a hotfix', ['releases', 'code-review']],
  ['q13', 'my laptop was stolen', ['laptops', 'incident']],
  ['q14', 'collecting a print job', ['printing']],
  ['q15', 'how do I get paid', ['payday', 'pension']],
  ['q16', 'who do I report problems to', ['incident', 'laptops', 'sick-leave']],
  ['q17', 'first week at the company', ['onboarding', 'laptops']],
  ['q18', 'guests visiting the office', ['security', 'office-hours']],
];

/** Writes the public pages and the judged questions as a BEIR dataset (corpus, queries, qrels/test.tsv). */
export function writeHandbookEvalSet(dir: string): void {
  fs.mkdirSync(path.join(dir, 'qrels'), { recursive: true });
  const corpus = UI_HANDBOOK.filter((d) => d.access === undefined).map((d) => {
    const [title, ...body] = (d.markdown ?? '').replace(/^# /, '').split('\n\n');
    return JSON.stringify({ _id: d.id, title, text: body.join('\n\n') });
  });
  fs.writeFileSync(path.join(dir, 'corpus.jsonl'), corpus.join('\n'));
  fs.writeFileSync(
    path.join(dir, 'queries.jsonl'),
    HANDBOOK_QUERIES.map(([_id, text]) => JSON.stringify({ _id, text })).join('\n'),
  );
  fs.writeFileSync(
    path.join(dir, 'qrels/test.tsv'),
    `query-id\tcorpus-id\tscore\n${HANDBOOK_QUERIES.flatMap(([q, , ds]) => ds.map((d) => `${q}\t${d}\t1`)).join('\n')}\n`,
  );
}

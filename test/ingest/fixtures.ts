/**
 * Real input files for the ingest tests, built on the fly (PDF via pdf-lib, DOCX via docx) in a temp
 * directory, so parsers are exercised on genuine bytes rather than hand-written parse trees.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Document, HeadingLevel, Packer, Paragraph, Table, TableCell, TableRow, TextRun } from 'docx';
import { PDFDocument, StandardFonts } from 'pdf-lib';

export function makeTempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-ingest-'));
}

export function writeFile(dir: string, name: string, content: string | Uint8Array): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

export function read(file: string): Buffer {
  return fs.readFileSync(file);
}

/** Two pages of text, then a blank page (which must not become a block). */
export async function makePdf(): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  pdf.setTitle('Quarry Operations Manual');
  pdf.setAuthor('Ada Lovelace');
  pdf.setSubject('Operations');
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  const pages = [
    ['Backups run every night at 02:00 UTC.', 'Each backup is verified by a restore test.'],
    ['Restores take about ten minutes.'],
  ];
  for (const lines of pages) {
    const page = pdf.addPage([612, 792]);
    lines.forEach((line, i) => {
      page.drawText(line, { x: 72, y: 700 - i * 18, size: 12, font });
    });
  }
  pdf.addPage([612, 792]);
  return pdf.save();
}

export async function makeDocx(): Promise<Buffer> {
  const doc = new Document({
    sections: [
      {
        children: [
          new Paragraph({ text: 'Installation Guide', heading: HeadingLevel.HEADING_1 }),
          new Paragraph({ text: 'Download the release archive first.' }),
          new Paragraph({ text: 'On Linux', heading: HeadingLevel.HEADING_2 }),
          new Paragraph({
            children: [
              new TextRun('Run '),
              new TextRun({ text: 'make install', bold: true }),
              new TextRun('.'),
            ],
          }),
          new Paragraph({ text: 'Permissions', heading: HeadingLevel.HEADING_3 }),
          new Paragraph({ text: 'Use sudo when writing to /usr/local.' }),
          new Paragraph({ text: 'Troubleshooting', heading: HeadingLevel.HEADING_1 }),
          new Table({
            rows: [
              new TableRow({
                children: [
                  new TableCell({ children: [new Paragraph('Error')] }),
                  new TableCell({ children: [new Paragraph('Fix')] }),
                ],
              }),
              new TableRow({
                children: [
                  new TableCell({ children: [new Paragraph('E42')] }),
                  new TableCell({ children: [new Paragraph('Reinstall')] }),
                ],
              }),
            ],
          }),
        ],
      },
    ],
  });
  return Packer.toBuffer(doc);
}

export const MARKDOWN = `---
title: Ops Handbook
tags: [ops, "on-call"]
access_groups:
  - staff
  - sre
created_at: 2024-03-01
owner: platform
draft: false
---

Welcome to the handbook.

# Deploying

Deploys run from CI. Every merge to main ships.

## Rollback *fast*

1. Open the dashboard.
2. Click **Rollback**.
   - confirm twice

\`\`\`sh
quarry rollback --to previous
\`\`\`

### Verify

> Check the error rate.

Setext Title
============

Last words.
`;

export const HTML = `<!doctype html>
<html><head><title>Widget   Guide</title>
<meta name="description" content="How widgets work">
<meta name="keywords" content="widgets, guide , ">
<meta name="author" content="Kim">
<style>.x { color: red }</style><script>var secret = 1;</script></head>
<body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
<h1>Widgets</h1>
<p>Widgets are <b>small</b>
   parts.<br>They snap together.</p>
<h2>Sizes</h2>
<ul><li>Small</li><li>Large <em>(rare)</em></li></ul>
<table><tr><th>Size</th><th>Weight</th></tr><tr><td>S</td><td>1 kg</td></tr></table>
<pre>line 1
  line 2</pre>
<blockquote><p>Quote here.</p></blockquote>
<noscript>Enable JavaScript</noscript>
<script>console.log('hidden')</script>
<div>Footer <span>text</span></div>
</body></html>
`;

export const CJK =
  '# 概要\n\n' +
  '本システムは文書を検索します。検索結果には必ず出典が付きます。' +
  '回答は根拠のある文だけで構成されます。根拠が足りない場合は回答を控えます。' +
  '索引は毎晩再構築されます。障害時には前日の索引に戻します。\n\n' +
  '## 運用\n\n' +
  '運用担当者は毎朝ログを確認します。異常があれば直ちに報告します。\n';

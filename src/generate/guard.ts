/**
 * The prompt-injection guard around generation. Before the prompt is built, every source of the context is
 * scanned for text that talks to the model instead of informing it (override instructions, fake roles and
 * chat-template turns, persona switches, requests to reveal the prompt, exfiltration links); each finding is
 * a guard event, and `guard.injection: 'drop'` leaves such a source out. After generation, links and images
 * in the answer that point where no source does and carry data in their query string (how an obeyed
 * injection leaks the question or the context) are stripped, or only flagged. Trace: `guard.passages`,
 * `guard.answer`; metric: `quarry_guard_events_total{kind}`. Delimiting in ./prompt.ts is the first line of
 * defence; this guard makes what got through visible, and keeps the worst outcome (a leak) out of answers.
 */
import { z } from 'zod';
import type { ContextSource, ContextWindow } from '../assemble/types.js';
import { type GuardEvent, recordGuardEvent } from '../observability/metrics.js';
import type { StageContext } from '../stage.js';

export const GuardConfigSchema = z.object({
  /**
   * What a source that looks like a prompt injection does: `flag` (default) keeps it (delimited, like every
   * source) and records a guard event; `drop` leaves it out of the prompt; `off` does not scan.
   */
  injection: z.enum(['flag', 'drop', 'off']).default('flag'),
  /**
   * A link or image in an LLM answer whose URL appears in no source and carries data in its query string:
   * `strip` (default) removes the URL and keeps the link text, `flag` keeps it and records a guard event,
   * `off` does not check.
   */
  exfiltration: z.enum(['strip', 'flag', 'off']).default('strip'),
});
export type GuardConfig = z.infer<typeof GuardConfigSchema>;

/** What kind of injection a pattern is evidence of (also the metric's `kind`, prefixed `injection_`). */
export type InjectionKind = 'override' | 'role' | 'persona' | 'prompt_leak' | 'exfiltration';

export interface InjectionFinding {
  kind: InjectionKind;
  /** The matched text, at most 120 characters. */
  match: string;
}

interface Pattern {
  kind: InjectionKind;
  re: RegExp;
}

// Patterns are anchored on phrasing that addresses a model, not on topics: a document *about* prompt
// injection that quotes one is flagged (it is one, to a model), a document about instructions is not.
// Languages: English, French, German, Spanish, Italian, Portuguese, Dutch, Russian, Chinese, Japanese.
const PREVIOUS =
  '(?:previous|prior|preceding|above|earlier|foregoing|former|original|initial|system|all(?: the| your)?|any|your)';
const RULES =
  '(?:instructions?|prompts?|rules|directions|directives|guidelines|commands|context|constraints)';
const PATTERNS: Pattern[] = [
  {
    kind: 'override',
    re: new RegExp(
      `\\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon)\\s+(?:all\\s+|any\\s+|every\\s+|the\\s+|of\\s+)*${PREVIOUS}(?:\\s+\\w+){0,2}\\s+${RULES}\\b`,
      'i',
    ),
  },
  { kind: 'override', re: /\b(?:new|updated|real|actual|revised) (?:system )?instructions\s*:/i },
  {
    kind: 'override',
    re: /\b(?:ignore[zr]?|oublie[zr]?|n['’]?(?:obéis|tiens) (?:pas|plus))\s+(?:toutes\s+)?(?:les|tes|vos|des)\s+(?:instructions|consignes|règles)(?:\s+\S+){0,2}\s+(?:précédentes|antérieures|ci-dessus|initiales|système)/i,
  },
  {
    kind: 'override',
    re: /\b(?:ignorier(?:e|en)?|vergiss|vergessen sie|missachte)\s+(?:bitte\s+)?(?:alle\s+)?(?:die\s+|deine\s+|ihre\s+)?(?:vorherigen|bisherigen|obigen|vorigen|früheren|ursprünglichen)\s+(?:Anweisungen|Instruktionen|Befehle|Regeln)/i,
  },
  {
    kind: 'override',
    re: /\b(?:ignora|ignore|olvida|olvide|ignorar|esqueça|esqueca|dimentica)\s+(?:todas\s+|tutte\s+)?(?:las|as|le|tus|suas|sus|tue)\s+(?:instrucciones|instruções|instrucoes|istruzioni|reglas|regras|regole)\s+(?:anteriores|previas|precedentes|precedenti|anteriori)/i,
  },
  {
    kind: 'override',
    re: /\b(?:negeer|vergeet)\s+(?:alle\s+)?(?:de\s+)?(?:vorige|eerdere|voorgaande|bovenstaande)\s+(?:instructies|opdrachten|regels)/i,
  },
  {
    kind: 'override',
    re: /(?:игнорируй(?:те)?|забудь(?:те)?|не обращай(?:те)? внимания на)\s+(?:все\s+)?(?:предыдущие|прежние|вышеуказанные)\s+(?:инструкции|указания|правила)/i,
  },
  {
    kind: 'override',
    re: /(?:忽略|无视|忘记|忽视)(?:掉)?(?:之前|以上|上面|前面|先前|所有)(?:的)?(?:所有)?(?:指令|指示|说明|规则|提示)/,
  },
  { kind: 'override', re: /(?:以前|前|上記|これまで)の(?:すべての)?(?:指示|命令|ルール)を(?:無視|忘れ)/ },
  // Fake turns: a line that opens a system / assistant / developer message, or chat-template tokens.
  {
    kind: 'role',
    re: /(?:^|\n)\s*(?:#{1,6}\s*|\*\*)?(?:system|assistant|developer)(?:\s+(?:prompt|message|override|note))?\s*(?:\*\*)?\s*:\s*\S/i,
  },
  {
    kind: 'role',
    re: /<\|(?:im_start|im_end|system|assistant|user|begin_of_text|start_header_id|eot_id)\|>/i,
  },
  { kind: 'role', re: /\[\/?INST\]|<<\/?SYS>>|<\/?(?:start_of_turn|end_of_turn)>/ },
  { kind: 'role', re: /<\/?\s*(?:system|instructions|source|sources)\s*(?:\s[^>]*)?>/i },
  // Persona switches.
  {
    kind: 'persona',
    re: /\byou are (?:now|no longer)\s+(?:a|an|the|my|in|called|named|free|DAN|unrestricted|jailbroken)\b/i,
  },
  // "From now on you should pay more" is prose (a quote in SQuAD); a persona switch tells the model how to behave.
  {
    kind: 'persona',
    re: /\bfrom now on,?\s+(?:you\s+(?:are|will|must|shall)\s+(?:be|act|respond|answer|reply|only|always|never|ignore|pretend|speak|talk)\b|(?:act|respond|answer|reply|speak)\s+(?:as|only|in|like)\b)/i,
  },
  { kind: 'persona', re: /\b(?:pretend|imagine) (?:that )?you are (?:a|an|no longer)\b/i },
  { kind: 'persona', re: /\b(?:DAN|developer|god|jailbreak) mode\b/i },
  {
    kind: 'persona',
    re: /\b(?:tu es|vous êtes) (?:maintenant|désormais) (?:un|une|le|la|mon|ma)\b|\bà partir de maintenant,? (?:tu|vous) (?:es|êtes|dois|devez)\b/i,
  },
  { kind: 'persona', re: /\b(?:du bist|sie sind) (?:jetzt|nun|ab sofort) (?:ein|eine|der|die|mein)\b/i },
  { kind: 'persona', re: /\b(?:ahora eres|a partir de ahora eres|ora sei|agora você é|agora voce e)\b/i },
  { kind: 'persona', re: /теперь ты\s|你现在是|あなたは今から/ },
  // Requests to reveal the prompt.
  {
    kind: 'prompt_leak',
    re: /\b(?:reveal|print|show|repeat|output|display|leak|disclose|dump|recite|tell me)\s+(?:me\s+)?(?:your|the)\s+(?:full\s+|entire\s+|complete\s+|original\s+|hidden\s+|secret\s+)*(?:system\s+prompt|system\s+message|initial\s+prompt|prompt|instructions|hidden\s+instructions)\b/i,
  },
  { kind: 'prompt_leak', re: /\b(?:repeat|print) (?:the|all) (?:words|text) above\b/i },
  {
    kind: 'prompt_leak',
    re: /\b(?:révèle|affiche|montre|zeige|verrate|gib|revela|muestra|mostra|rivela)\w*(?:[-\s]+(?:moi|mir|me))?\s+(?:ton|votre|le|deinen|den|ihren|tu|el|il|o|seu)\s+(?:prompt|Systemprompt|Prompt|instructions|Anweisungen|instrucciones|istruzioni|instruções)/i,
  },
  // Exfiltration: images or links that would carry data out, or instructions to build one.
  { kind: 'exfiltration', re: /!\[[^\]\n]{0,200}\]\(\s*<?https?:\/\/[^)\s]*\?[^)\s]*=/i },
  {
    kind: 'exfiltration',
    re: /https?:\/\/[^\s)]*[?&][\w.-]+=(?:\{[^}\s]{1,40}\}|\[[^\]\s]{1,40}\]|<[^>\s]{1,40}>|\$\{?[A-Za-z_]+|%s|[A-Z_]{4,}\b)/,
  },
  {
    kind: 'exfiltration',
    re: /\b(?:append|add|include|encode|insert|put|embed|attach)\s+(?:the\s+|all\s+|this\s+|a\s+)?(?:user'?s?\s+|previous\s+)?(?:question|conversation|chat|history|prompt|query|message|data|answer|context|secrets?|password|api key)\b[^.\n]{0,80}\b(?:to|in|into|as)\s+(?:the|a|this)\s+(?:url|link|image|query string|parameter)/i,
  },
];

/** Every injection pattern the text matches, at most one finding per kind. */
export function detectInjection(text: string): InjectionFinding[] {
  const found = new Map<InjectionKind, InjectionFinding>();
  for (const p of PATTERNS) {
    if (found.has(p.kind)) continue;
    const m = p.re.exec(text);
    if (m !== null) found.set(p.kind, { kind: p.kind, match: excerpt(m[0].trim()) });
  }
  return [...found.values()];
}

const eventOf = (kind: InjectionKind): GuardEvent => `injection_${kind}`;

export interface PassageGuardResult {
  context: ContextWindow;
  flagged: Array<{ n: number; docId: string; chunkIds: number[]; findings: InjectionFinding[] }>;
  dropped: number[];
}

/**
 * Scan every source of the context; with `drop`, leave the suspicious ones out. Source numbers are kept as
 * assembled (a dropped source leaves a gap), so citations keep naming the sources the model saw.
 */
export function guardPassages(
  context: ContextWindow,
  config: GuardConfig,
  ctx: StageContext,
): PassageGuardResult {
  if (config.injection === 'off') return { context, flagged: [], dropped: [] };
  return ctx.trace.stage(
    'guard.passages',
    () => {
      const flagged: PassageGuardResult['flagged'] = [];
      const kept: ContextSource[] = [];
      for (const s of context.sources) {
        const findings = detectInjection(`${s.title}\n${s.text}`);
        if (findings.length > 0) {
          flagged.push({ n: s.n, docId: s.docId, chunkIds: s.chunkIds, findings });
          for (const f of findings) recordGuardEvent(eventOf(f.kind));
        }
        if (findings.length === 0 || config.injection !== 'drop') kept.push(s);
      }
      const dropped = config.injection === 'drop' ? flagged.map((f) => f.n) : [];
      const guarded =
        dropped.length === 0
          ? context
          : {
              ...context,
              sources: kept,
              tokens: kept.reduce((t, s) => t + s.tokens, 0),
              dropped: [
                ...context.dropped,
                ...context.sources
                  .filter((s) => dropped.includes(s.n))
                  .flatMap((s) => s.chunkIds.map((chunkId) => ({ chunkId, reason: 'prompt-injection' }))),
              ],
            };
      return { context: guarded, flagged, dropped };
    },
    (r) => ({
      policy: config.injection,
      scanned: context.sources.length,
      events: r.flagged.reduce((n, f) => n + f.findings.length, 0),
      flagged: r.flagged,
      dropped: r.dropped,
    }),
  );
}

export interface AnswerLink {
  url: string;
  /** The whole link as written (markdown image or link, HTML tag, or bare URL). */
  text: string;
  image: boolean;
}

// Markdown image / link, an HTML <img> / <a>, or a bare URL; query strings are what carries data out.
const LINK =
  /(!?)\[([^\]\n]{0,300})\]\(\s*<?(https?:\/\/[^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|<(img|a)\b[^>]*?\b(?:src|href)\s*=\s*["']?(https?:\/\/[^"'\s>]+)["']?[^>]*>|(https?:\/\/[^\s<>()"'\]]+)/gi;

/** A URL carries data when its query string (or fragment) holds a key with a non-empty value. */
export function carriesData(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  for (const [, v] of u.searchParams) if (v.trim() !== '') return true;
  return /[=&]/.test(u.hash) && /=[^&]+/.test(u.hash);
}

export interface AnswerGuardResult {
  text: string;
  /** Links that point nowhere the sources do and carry data. */
  exfiltration: AnswerLink[];
  stripped: boolean;
}

/** The exfiltration links of `text` and the text with each replaced by its link text (or `[link removed]`). */
function scanLinks(text: string, known: string): { stripped: string; links: AnswerLink[] } {
  const links: AnswerLink[] = [];
  const stripped = text.replace(
    LINK,
    (whole, bang: string, label: string, mdUrl: string, tag: string, tagUrl: string, bare: string) => {
      // A bare URL at the end of a sentence keeps its full stop outside the URL.
      const trail = bare === undefined ? '' : (/[.,;:!?]+$/.exec(bare)?.[0] ?? '');
      const url = mdUrl ?? tagUrl ?? bare?.slice(0, bare.length - trail.length) ?? '';
      if (!carriesData(url) || known.includes(url)) return whole;
      links.push({ url, text: whole, image: bang === '!' || tag?.toLowerCase() === 'img' });
      return mdUrl !== undefined ? label : `[link removed]${trail}`;
    },
  );
  return { stripped, links };
}

const knownText = (sources: readonly Pick<ContextSource, 'text'>[]): string =>
  sources.map((s) => s.text).join('\n');

/**
 * Find links in the answer whose URL appears in no source and carries data; with `strip`, replace each by
 * its link text (an image by its alt text) so nothing is fetched or clicked.
 */
export function guardAnswer(
  text: string,
  sources: readonly Pick<ContextSource, 'text'>[],
  config: GuardConfig,
  ctx: StageContext,
): AnswerGuardResult {
  if (config.exfiltration === 'off') return { text, exfiltration: [], stripped: false };
  return ctx.trace.stage(
    'guard.answer',
    () => {
      const { stripped: guarded, links } = scanLinks(text, knownText(sources));
      recordGuardEvent('answer_exfiltration', links.length);
      const stripped = config.exfiltration === 'strip' && links.length > 0;
      return { text: stripped ? guarded : text, exfiltration: links, stripped };
    },
    (r) => ({
      policy: config.exfiltration,
      events: r.exfiltration.length,
      stripped: r.stripped,
      links: r.exfiltration.map((l) => ({ url: excerpt(l.url), image: l.image })),
    }),
  );
}

/** Longest text held back while a link may still be completing; past it, text is released as it stands. */
const MAX_HELD = 2000;

/**
 * Where an unfinished link may begin at the end of streamed text: a markdown `[…` / `[…]` / `[…](…` not
 * closed yet, an `<img` / `<a` tag without its `>`, or a bare URL (or the start of `https://`) not yet
 * followed by a space. Everything before it can be released.
 */
function heldFrom(text: string): number {
  let cut = text.length;
  const bracket = text.lastIndexOf('[');
  if (bracket >= 0 && /^\[[^\]\n]*(?:\](?:\([^)\n]*)?)?$/.test(text.slice(bracket)))
    cut = Math.min(cut, bracket > 0 && text[bracket - 1] === '!' ? bracket - 1 : bracket);
  const angle = text.lastIndexOf('<');
  if (angle >= 0 && /^<(?:(?:i(?:m(?:g)?)?|a)(?:\s[^>]*)?)?$/i.test(text.slice(angle)))
    cut = Math.min(cut, angle);
  const word = /\S*$/.exec(text)!;
  const url = word[0].search(/https?:\/\//i);
  if (url >= 0) {
    // The URL of a markdown link or a tag is held with its `[label](` or `<img src="`, so the link is
    // judged whole.
    const at = word.index + url;
    const open = text.lastIndexOf('[', at);
    const tag = text.lastIndexOf('<', at);
    let start = at;
    if (open >= 0 && /^\[[^\]\n]*\]\(\s*<?$/.test(text.slice(open, at)))
      start = open > 0 && text[open - 1] === '!' ? open - 1 : open;
    else if (tag >= 0 && /^<(?:img|a)\s[^>]*$/i.test(text.slice(tag, at))) start = tag;
    cut = Math.min(cut, start);
  } else {
    const prefix = /h(?:t(?:t(?:p(?:s?(?::(?:\/\/?)?)?)?)?)?)?$/i.exec(word[0]);
    if (prefix !== null) cut = Math.min(cut, word.index + prefix.index);
  }
  // A trailing `!` may open an image.
  if (text.endsWith('!')) cut = Math.min(cut, text.length - 1);
  return cut;
}

/**
 * The output guard for streamed answers: text is released as it arrives except from where a link may be
 * forming, and a completed exfiltration link is released stripped, so a client rendering the stream never
 * fetches it. The final answer is checked again by `guardAnswer` (which records the events).
 */
export class StreamLinkGuard {
  private held = '';
  private readonly known: string;

  constructor(sources: readonly Pick<ContextSource, 'text'>[]) {
    this.known = knownText(sources);
  }

  /** Text that can be shown now (possibly empty). */
  push(delta: string): string {
    this.held += delta;
    const cut = this.held.length > MAX_HELD ? this.held.length : heldFrom(this.held);
    const ready = this.held.slice(0, cut);
    this.held = this.held.slice(cut);
    return ready === '' ? '' : scanLinks(ready, this.known).stripped;
  }

  /** What is still held, at the end of the stream. */
  end(): string {
    const rest = this.held;
    this.held = '';
    return rest === '' ? '' : scanLinks(rest, this.known).stripped;
  }
}

function excerpt(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

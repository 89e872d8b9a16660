// Strings for comparing aos_cus.count_tokens with npm tiktoken (oracle test and bench/35_tokens.sh), and the
// installer of npm tiktoken (at the version the rank files were converted from) into a scratch directory.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

/** The npm tiktoken whose encoders/*.json scripts/tiktoken_ranks.py converted into data/aos_cus_*.bpe. */
export const TIKTOKEN_VERSION = '1.0.22';

export interface Encoder { encode(text: string, allowed?: string[], disallowed?: string[]): Uint32Array; free(): void }
export interface Tiktoken { get_encoding(name: string): Encoder }

/** npm install tiktoken into the scratch directory dir and load it; the result's dir is the package's own. */
export function installTiktoken(dir: string): { tiktoken: Tiktoken; dir: string } {
  fs.writeFileSync(path.join(dir, 'package.json'), '{"private": true}');
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `tiktoken@${TIKTOKEN_VERSION}`],
    { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  const tiktoken = createRequire(path.join(dir, 'package.json'))('tiktoken') as Tiktoken;
  return { tiktoken, dir: path.join(dir, 'node_modules', 'tiktoken') };
}

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ('the of and to in is was that for on are with as his they be at one have this from or had by hot word but what ' +
  'some we can out other were all there when up use your how said an each she which do their time if will way about many ' +
  'then them write would like so these her long make thing see him two has look more day could go come did number sound no ' +
  'most people my over know water than call first who may down side been now find tokenization PostgreSQL extension budget ' +
  'Anthropic OpenAI Gemini Bedrock encyclopaedia antidisestablishmentarianism naïve café résumé coöperate Zürich straße').split(' ');
const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D", "'Ll", "'rE", '’s', '’ll', "'x", "'"];
const CODE = [
  'function add(a, b) {\n  return a + b;\n}\n', 'def f(x):\n\treturn [i ** 2 for i in range(x) if i % 3 == 0]\n',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }\n', 'SELECT id, sum(cost) FROM usage WHERE t >= now() - interval \'1 day\' GROUP BY 1;\n',
  'const x = await fetch(`${base}/v1/chat?x=${encodeURIComponent(q)}`);\n', '    if (err != nil) {\n        return nil, fmt.Errorf("read: %w", err)\n    }\n',
  '<div class="a b" data-x=\'1\'>&nbsp;&lt;tag&gt;</div>\r\n', 'x=1;y=2;z=x<<3|y>>1&0xff^~0;', '// TODO: fix me!!!\n/* block */\n',
  'for (let i = 0; i < n; i++) { s += a[i] * b[i]; }', 'let re = /^[a-z0-9_.+-]+@[a-z0-9-]+\\.[a-z]{2,}$/i;', '{"key": [1, 2.5e-3, null, true], "k2": {"a": "b"}}',
];
const EMOJI = ['👨‍👩‍👧‍👦', '👍🏽', '🏳️‍🌈', '🧑🏿‍💻', '👩🏻‍❤️‍💋‍👨🏼', '🇫🇷', '🇯🇵', '❤️', '😀', '🤷‍♀️', '👋🏿', '🫶🏾', '1️⃣', '#️⃣', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '✌🏻', '🙆🏼‍♂️'];
const SPACES = [' ', '  ', '\t', '\n', '\r\n', '\n\n', ' \n', '\t\t', '\u00a0', '\u3000', '\u2028', '\u0085', '\u2003', '\u200b', '\f', '\v', '\r'];
const SPECIAL = ['ſ', 'K', 'İ', 'ı', 'ß', 'ς', 'ﬁ', 'Ⅻ', '²', '½', '٣', '１２３', 'ǅ', 'ʰ', '〆', '々', '<|endoftext|>', '<|fim_prefix|>'];

function codepoint(r: () => number, lo: number, hi: number): string {
  return String.fromCodePoint(lo + Math.floor(r() * (hi - lo + 1)));
}

/** The categories of make(), by number. */
export const KINDS = ['English prose', 'source code', 'CJK', 'Arabic and Hindi', 'emoji', 'combining marks', 'whitespace runs',
  'digit runs', 'contractions', 'random bytes', 'mixed'];

/** One string of a category. */
function make(r: () => number, kind: number): string {
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
  const n = 1 + Math.floor(r() * 40);
  let s = '';
  switch (kind) {
    case 0: // English prose
      for (let i = 0; i < n; i++) {
        let w = pick(WORDS);
        if (r() < 0.15) w = w[0].toUpperCase() + w.slice(1);
        if (r() < 0.05) w = w.toUpperCase();
        s += (i ? ' ' : '') + w + (r() < 0.1 ? pick([',', '.', ';', ':', '!', '?', '."', ')', '...']) : '');
      }
      return s;
    case 1: // source code
      for (let i = 0; i < 1 + n / 8; i++) s += pick(CODE);
      return s;
    case 2: // CJK: Han, kana, Hangul, full-width punctuation
      for (let i = 0; i < n; i++)
        s += pick([() => codepoint(r, 0x4e00, 0x9fff), () => codepoint(r, 0x3041, 0x3096), () => codepoint(r, 0x30a1, 0x30fa),
          () => codepoint(r, 0xac00, 0xd7a3), () => pick(['。', '、', '「', '」', '！', '？', ' ', 'ー'])])();
      return s;
    case 3: // Arabic with diacritics and Hindi (Devanagari)
      for (let i = 0; i < n; i++)
        s += pick([() => codepoint(r, 0x0621, 0x064a), () => codepoint(r, 0x064b, 0x0652), () => codepoint(r, 0x0905, 0x0939),
          () => codepoint(r, 0x093e, 0x094d), () => codepoint(r, 0x0966, 0x096f), () => ' ', () => '،', () => '।'])();
      return s;
    case 4: // emoji with ZWJ sequences, skin tones, flags, keycaps
      for (let i = 0; i < n; i++) s += pick([pick(EMOJI), codepoint(r, 0x1f600, 0x1f64f) + codepoint(r, 0x1f3fb, 0x1f3ff), ' ', pick(WORDS), '\u200d', '\ufe0f']);
      return s;
    case 5: // combining marks on Latin, Greek and Cyrillic letters
      for (let i = 0; i < n; i++) {
        s += pick([() => codepoint(r, 0x61, 0x7a), () => codepoint(r, 0x41, 0x5a), () => codepoint(r, 0x3b1, 0x3c9), () => codepoint(r, 0x430, 0x44f)])();
        for (let k = Math.floor(r() * 4); k > 0; k--) s += codepoint(r, 0x0300, 0x036f);
        if (r() < 0.2) s += pick([' ', "'s", '-', '1']);
      }
      return s;
    case 6: // runs of spaces, tabs and newlines between words
      for (let i = 0; i < n; i++) s += pick(SPACES).repeat(1 + Math.floor(r() * 6)) + (r() < 0.6 ? pick(WORDS) : pick(['', '!', '1', '.']));
      return s;
    case 7: // long digit runs, numbers with separators, other numerals
      for (let i = 0; i < 1 + n / 10; i++)
        s += pick([' ', '', 'x', ',', '.', '-', ' $']) + Array.from({ length: 1 + Math.floor(r() * 120) }, () => String(Math.floor(r() * 10))).join('') +
          (r() < 0.2 ? pick(SPECIAL) : '');
      return s;
    case 8: // contractions in various cases and places
      for (let i = 0; i < n; i++) s += pick(['', ' ', '  ', '\n', '1', 'A', 'a', 'é']) + (r() < 0.7 ? pick(WORDS) : '') + pick(CONTRACTIONS) + (r() < 0.3 ? pick(CONTRACTIONS) : '');
      return s;
    case 9: { // random bytes decoded as UTF-8 with replacement (NUL removed: text cannot hold it)
      const b = Buffer.alloc(1 + Math.floor(r() * 200));
      for (let i = 0; i < b.length; i++) b[i] = r() < 0.5 ? Math.floor(r() * 256) : 0x20 + Math.floor(r() * 0x5f);
      return b.toString('utf8').replace(/\u0000/g, '');
    }
    default: // a mix of everything, with case-folding and numeral oddities
      for (let i = 0; i < 1 + n / 8; i++) s += make(r, Math.floor(r() * 10)) + pick(SPECIAL) + pick(SPACES);
      return s;
  }
}

/** count strings of every category (round-robin: string i is of KINDS[i % 11]), then docs documents of about 100 kB each. */
export function corpus(count: number, docs: number, seed = 16): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(make(r, i % 11));
  for (let d = 0; d < docs; d++) {
    let s = '';
    while (Buffer.byteLength(s) < 100_000) s += make(r, Math.floor(r() * 11)) + (r() < 0.3 ? '\n\n' : ' ');
    out.push(s);
  }
  return out;
}

/** Long runs of one short unit (10,000 repeats): single pieces of up to 40 kB that stress the byte-pair merge. */
export function longRuns(): string[] {
  return [' ', 'a', 'ab', 'Aa', '!', '\n', ' \n', '\t', '1', '日', '\u0301', 'é', '😀', '👍🏽', "'s"].map((u) => u.repeat(10_000));
}

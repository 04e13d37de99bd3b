// Keeps the documentation from rotting: `node scripts/check-docs.mjs` (scripts/test.sh runs it after
// the build) checks README.md, CHANGELOG.md and docs/*.md for
//   - tables of contents: the list between `<!-- toc -->` and `<!-- /toc -->` must be the file's
//     `##` and `###` headings (`--write` rewrites them);
//   - links: every relative link must name a file that exists and, with `#anchor`, a heading in it;
//   - TypeScript: every ```ts block is compiled with tsc against the built package (imported by
//     its name, as an application does), with the strictness of a `nest new` app (strict,
//     isolatedModules, decorator metadata). A fragment says what it stands in, in an HTML comment
//     right above the block: `<!-- snippet context: ... -->` (imports and declarations put before
//     it, not shown), and may import the example modules of docs/snippets/ ('./order.entity', ...)
//     and blocks marked `<!-- snippet file: order.service.ts -->` (compiled under that name).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WRITE = process.argv.includes('--write');
const FILES = ['README.md', 'CHANGELOG.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const problems = [];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(headings) {
  const seen = new Map();
  return headings.map(({ text }) => {
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    return count ? `${base}-${count}` : base;
  });
}

/** The file's lines, each marked whether it sits inside a fenced code block. */
function lines(text) {
  let fenced = false;
  return text.split('\n').map((line) => {
    const fence = line.startsWith('```');
    if (fence) fenced = !fenced;
    return { line, code: fenced || fence };
  });
}

function headings(text) {
  return lines(text)
    .filter(({ line, code }) => !code && /^#{1,6} /.test(line))
    .map(({ line }) => ({ level: line.match(/^#+/)[0].length, text: line.replace(/^#+ /, '').trim() }));
}

function toc(text) {
  const all = headings(text);
  const anchors = anchorsOf(all);
  return all
    .map((h, i) => ({ ...h, anchor: anchors[i] }))
    .filter((h) => h.level === 2 || h.level === 3)
    .map((h) => `${'  '.repeat(h.level - 2)}- [${h.text.replace(/`/g, '')}](#${h.anchor})`)
    .join('\n');
}

const texts = new Map(FILES.map((file) => [file, readFileSync(join(ROOT, file), 'utf8')]));

// Tables of contents.
for (const [file, text] of texts) {
  const match = text.match(/<!-- toc -->\n([\s\S]*?)<!-- \/toc -->/);
  if (!match) {
    if (file.startsWith('docs/')) problems.push(`${file}: no table of contents (<!-- toc --> ... <!-- /toc -->)`);
    continue;
  }
  const wanted = `${toc(text)}\n`;
  if (match[1] === wanted) continue;
  if (WRITE) {
    const updated = text.replace(match[0], `<!-- toc -->\n${wanted}<!-- /toc -->`);
    texts.set(file, updated);
    writeFileSync(join(ROOT, file), updated);
    console.log(`[docs] ${file}: table of contents rewritten`);
  } else {
    problems.push(`${file}: the table of contents is not the headings' (run node scripts/check-docs.mjs --write)`);
  }
}

// Links.
const anchorCache = new Map();
const anchorsIn = (file) => {
  if (!anchorCache.has(file)) anchorCache.set(file, new Set(anchorsOf(headings(readFileSync(file, 'utf8')))));
  return anchorCache.get(file);
};
for (const [file, text] of texts) {
  for (const { line, code } of lines(text)) {
    if (code) continue;
    for (const [, target] of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(https?:|mailto:)/.test(target)) continue;
      const [path, anchor] = target.split('#');
      const absolute = path ? resolve(dirname(join(ROOT, file)), path) : join(ROOT, file);
      if (!existsSync(absolute)) {
        problems.push(`${file}: link to ${target}: no such file`);
      } else if (anchor && absolute.endsWith('.md') && !anchorsIn(absolute).has(anchor)) {
        problems.push(`${file}: link to ${target}: no heading #${anchor} in ${relative(ROOT, absolute)}`);
      }
    }
  }
}

// TypeScript snippets.
const OUT = join(ROOT, '.cache', 'doc-snippets');
rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
cpSync(join(ROOT, 'docs', 'snippets'), OUT, { recursive: true });
const snippets = [];
for (const [file, text] of texts) {
  const all = lines(text);
  for (let i = 0; i < all.length; i++) {
    if (all[i].line !== '```ts') continue;
    let end = i + 1;
    while (all[end].line !== '```') end++;
    const body = all.slice(i + 1, end).map((l) => l.line);
    // The context comment: the lines right above the fence (blank lines between are allowed).
    let above = i - 1;
    while (above >= 0 && all[above].line.trim() === '') above--;
    let context = [];
    let name = `${basename(file, '.md').toLowerCase()}-${String(i + 1).padStart(4, '0')}.ts`;
    const named = above >= 0 ? all[above].line.match(/^<!-- snippet file: ([\w.-]+\.ts) -->$/) : null;
    if (named) {
      // A block other snippets import ('./order.service'), under that file name.
      name = named[1];
    } else if (above >= 0 && all[above].line.trim() === '-->') {
      let start = above;
      while (start >= 0 && !all[start].line.startsWith('<!-- snippet context')) start--;
      if (start < 0) problems.push(`${file}:${i + 1}: an HTML comment above a ts block that is not '<!-- snippet context:'`);
      else context = all.slice(start + 1, above).map((l) => l.line);
    }
    if (snippets.some((s) => s.name === name) || existsSync(join(OUT, name))) problems.push(`${file}:${i + 1}: a second snippet file ${name}`);
    // Line numbers of tsc's messages map back to the document: the context goes on the first line.
    const header = `${context.join(' ')} // context of ${file}:${i + 1}`;
    writeFileSync(join(OUT, name), `${header}\n${body.join('\n')}\nexport {};\n`);
    snippets.push({ name, file, line: i + 2 });
  }
}
writeFileSync(
  join(OUT, 'tsconfig.json'),
  JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2023',
        lib: ['ES2023'],
        module: 'esnext',
        moduleResolution: 'bundler',
        strict: true,
        isolatedModules: true,
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
        esModuleInterop: true,
        skipLibCheck: true,
        noEmit: true,
        types: ['node', 'jest'],
        typeRoots: [join(ROOT, 'node_modules', '@types')],
      },
      include: ['*.ts'],
    },
    null,
    2,
  ),
);
const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(OUT, 'tsconfig.json')], { encoding: 'utf8', cwd: ROOT });
if (tsc.status !== 0) {
  const byName = new Map(snippets.map((s) => [s.name, s]));
  for (const message of `${tsc.stdout}${tsc.stderr}`.split('\n').filter((l) => /error TS/.test(l))) {
    const m = message.match(/([\w.-]+\.ts)\((\d+),(\d+)\): (.*)/);
    const snippet = m && byName.get(m[1]);
    problems.push(snippet ? `${snippet.file}:${snippet.line + Number(m[2]) - 2}: ${m[4]}` : message.trim());
  }
  if (!problems.length) problems.push(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
}

if (problems.length) {
  console.error(`[docs] ${problems.length} problem(s):\n${problems.map((p) => `  ${p}`).join('\n')}`);
  process.exit(1);
}
console.log(`[docs] ${texts.size} files: tables of contents and links ok; ${snippets.length} TypeScript snippets compiled`);

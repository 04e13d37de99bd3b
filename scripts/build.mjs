// Builds the package: the CommonJS implementation (dist/cjs, tsconfig.build.json), the ES module
// declarations (dist/**/*.d.ts, tsconfig.types.json), and the ES module entries, which re-export
// the CommonJS build by name, so that `import` and `require` give the same classes and the same
// module state (no dual-package hazard). `npm run build`; `prepare` runs it (git installs too).
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
/** The package's entries (package.json "exports"), as paths under dist/ without the extension. */
const ENTRIES = ['index', 'testing/index'];

function tsc(project) {
  const result = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, project)], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

rmSync(DIST, { recursive: true, force: true });
tsc('tsconfig.build.json');
writeFileSync(join(DIST, 'cjs', 'package.json'), `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);
tsc('tsconfig.types.json');

const require = createRequire(import.meta.url);
for (const entry of ENTRIES) {
  const names = Object.keys(require(join(DIST, 'cjs', `${entry}.js`))).filter((name) => name !== '__esModule' && name !== 'default').sort();
  const depth = entry.split('/').length - 1;
  const from = `${depth ? '../'.repeat(depth) : './'}cjs/${entry}.js`;
  const file = join(DIST, `${entry}.js`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    `// The ES module entry: the CommonJS build's exports, by name (one copy of the module state). Written by scripts/build.mjs.\n` +
      // require(), not import: the implementation runs when this module is evaluated, after NestJS
      // (imported first: 11 is CommonJS, 12 ES modules only). A static import of a CommonJS module
      // runs it while the importer's graph is still being linked; a Jest test in ESM mode that also
      // imports NestJS then has the implementation's require(esm) meet NestJS unevaluated, which
      // Jest refuses as a cycle. The require() of Node's CommonJS loader, so one module either way.
      `import '@nestjs/common';\nimport '@nestjs/core';\nimport { createRequire } from 'node:module';\n\n` +
      `const implementation = createRequire(import.meta.url)('${from}');\n\n` +
      `export const {\n${names.map((name) => `  ${name},`).join('\n')}\n} = implementation;\n`,
  );
}

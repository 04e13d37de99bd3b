import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DataSource } from 'typeorm';

/**
 * @internal Loads the DataSource a file exports, as TypeORM's CLI does: the default export or a
 * named `dataSource` (a DataSource, or a function or promise giving one). JavaScript files; for
 * TypeScript, point to the compiled file (decorated entities need compiling).
 */
export async function loadDataSource(file: string): Promise<DataSource> {
  const path = resolve(process.cwd(), file);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`Could not load the DataSource file ${path}: ${(error as Error)?.message ?? error}`);
  }
  let candidate: unknown = module.dataSource ?? module.default ?? Object.values(module).find(isDataSource);
  if (typeof candidate === 'function' && !isDataSource(candidate)) candidate = await (candidate as () => unknown)();
  candidate = await candidate;
  if (!isDataSource(candidate)) {
    throw new Error(`${path} exports no TypeORM DataSource: export one as default or as 'dataSource' (new DataSource({...})).`);
  }
  return candidate;
}

function isDataSource(value: unknown): value is DataSource {
  return typeof value === 'object' && value !== null && typeof (value as DataSource).initialize === 'function' && 'options' in value;
}

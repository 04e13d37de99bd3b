import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI, as the package's `bin` names it (scripts/test.sh builds it first). */
export const CLI_SCRIPT = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'), 'dist', 'cjs', 'cli', 'main.js');

// Loaded with `node --import ./bench/use-library.mjs` by bench/compare-versions.ts: makes every
// import of 'nestjs-transactional-message' in the bench (and so its workloads, app and harness)
// load the package whose entry file TM_BENCH_LIBRARY names, e.g. an earlier version unpacked
// under .cache/ beside this repository's node_modules (so both run on the same dependencies).
// Without TM_BENCH_LIBRARY, nothing changes.
import { registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';

const entry = process.env.TM_BENCH_LIBRARY;
if (entry) {
  const url = pathToFileURL(entry).href;
  registerHooks({
    resolve(specifier, context, next) {
      return specifier === 'nestjs-transactional-message' ? { url, format: 'module', shortCircuit: true } : next(specifier, context);
    },
  });
}

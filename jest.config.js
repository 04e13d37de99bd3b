// Jest in ESM mode, failing on any unhandled rejection (see scripts/test.sh): run with
// NODE_OPTIONS="--experimental-vm-modules --unhandled-rejections=strict". Strict, because Jest
// forgives a rejection that is handled late, while Node's default ends the process at once: a
// library promise that rejects unobserved for a moment kills its host, so it must fail a test here.
for (const flag of ['--experimental-vm-modules', '--unhandled-rejections=strict']) {
  if (!(process.env.NODE_OPTIONS ?? '').includes(flag) && !process.execArgv.includes(flag)) {
    throw new Error(`Run Jest with NODE_OPTIONS="--experimental-vm-modules --unhandled-rejections=strict" (missing: ${flag}); scripts/test.sh does.`);
  }
}
// Unit specs live beside the code; integration tests under test/ talk to the real services.
const transform = {
  '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
};
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform,
  testEnvironment: 'node',
};

export default {
  // A deadline for a failure message when something never arrives, not a timing assertion.
  testTimeout: 60_000,
  // A worker's memory grows suite by suite (each test file loads its own module registry, and the
  // ESM ones are not freed at once). A worker past this after a file is replaced by a fresh one,
  // so that none ends the run with a heap too big to tear down in Jest's half second of grace
  // ("A worker process has failed to exit gracefully").
  workerIdleMemoryLimit: '1GB',
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      globals: { EXPECTED_TYPEORM: '1.' },
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
    },
    {
      // The same integration tests (the core ones, see scripts/test.sh) against TypeORM 0.3.x,
      // installed beside 1.x as the alias typeorm-03: every import of 'typeorm' (the library's,
      // the tests', @nestjs-cls' and typeorm-transactional's) resolves to it.
      ...common,
      displayName: 'typeorm-0.3',
      globals: { EXPECTED_TYPEORM: '0.3.' },
      moduleNameMapper: { ...common.moduleNameMapper, '^typeorm$': 'typeorm-03', '^typeorm/(.*)$': 'typeorm-03/$1' },
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      // Own ports (brokers, PgBouncers), own processes (the earlier version) or nothing of TypeORM: run once, by the integration project.
      testPathIgnorePatterns: ['/test/faults/', 'kafka-transactions', 'exactly-once', 'broker-restart', 'request-limits', 'cli.e2e', 'dashboard.e2e', 'pgbouncer', 'upgrade.e2e'],
    },
    {
      // The sample app imports the library by package name, i.e. the built dist/ (scripts/test.sh builds it first).
      ...common,
      displayName: 'sample-app',
      transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'sample-app/tsconfig.json' }] },
      testMatch: ['<rootDir>/sample-app/test/**/*.e2e-spec.ts'],
    },
  ],
};

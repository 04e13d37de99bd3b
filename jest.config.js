// Jest in ESM mode (run with NODE_OPTIONS=--experimental-vm-modules, see scripts/test.sh).
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
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
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

import { isPackageNotInstalled, OptionalDependencyMissingError } from './optional-dependency-missing.error.js';

describe('OptionalDependencyMissingError', () => {
  it('says "not installed" when the loader cannot find the package itself', async () => {
    const name = 'tm-no-such-package-anywhere';
    const error = await import(name).then(() => undefined, (e: unknown) => e);
    expect(isPackageNotInstalled(error, 'tm-no-such-package-anywhere')).toBe(true);
    const missing = new OptionalDependencyMissingError('tm-no-such-package-anywhere', 'The Kafka publisher', error);
    expect(missing.installed).toBe(false);
    expect(missing.message).toBe(
      "The Kafka publisher needs the package 'tm-no-such-package-anywhere', which is not installed. Install it (npm install tm-no-such-package-anywhere), or do not use The Kafka publisher.",
    );
  });

  it('says "installed but failed to load", with the fix, when the package is there and its loading failed', () => {
    // What Jest's CommonJS loader says of an ES module on Node 22 (the case of the issue).
    const esm = Object.assign(new Error('Must use import to load ES Module: /app/node_modules/@platformatic/kafka/dist/index.js'), { code: 'ERR_REQUIRE_ESM' });
    const failed = new OptionalDependencyMissingError('@platformatic/kafka', 'The Kafka publisher', esm);
    expect(failed.installed).toBe(true);
    expect(failed.message).toMatch(/which is installed but failed to load \(Must use import to load ES Module: .*\)\. It is an ES module loaded through require\(\): .*--experimental-vm-modules/);
    // A dependency of the package is missing: the package itself is installed.
    const inner = Object.assign(new Error("Cannot find package '@platformatic/wasm-utils' imported from /app/node_modules/@platformatic/kafka/dist/index.js"), { code: 'ERR_MODULE_NOT_FOUND' });
    expect(isPackageNotInstalled(inner, '@platformatic/kafka')).toBe(false);
    expect(new OptionalDependencyMissingError('@platformatic/kafka', 'The Kafka publisher', inner).message).toMatch(/installed but failed to load .*Reinstall it/);
  });
});

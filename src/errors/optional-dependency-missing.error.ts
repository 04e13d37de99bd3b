import { TransactionalMessageConfigurationError } from './configuration.error.js';

/**
 * @internal Whether `error`, thrown by loading `packageName`, says that the package itself is not
 * installed (Node's ERR_MODULE_NOT_FOUND / MODULE_NOT_FOUND naming it), rather than that it is
 * installed and failed to load (an ES module required by a CommonJS loader, a dependency of its own
 * missing, a syntax the runtime does not know).
 */
export function isPackageNotInstalled(error: unknown, packageName: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  const text = String(message ?? '');
  return [`'${packageName}'`, `"${packageName}"`, `'${packageName}/`, `"${packageName}/`].some((quoted) => text.includes(quoted));
}

/** What to do about a package that is installed and failed to load, from the error it gave. */
function loadFailureFix(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const text = String(message ?? '');
  if (code === 'ERR_REQUIRE_ESM' || /Must use import to load ES Module|Cannot use import statement outside a module|require\(\) of ES Module/.test(text)) {
    return (
      'It is an ES module loaded through require(): under Jest in a CommonJS app, run Jest with ' +
      'NODE_OPTIONS=--experimental-vm-modules on Node 24.9+; on Node 22, choose a CommonJS alternative in tests where there is one ' +
      "(kafka.client: 'kafkajs'). See docs/testing.md, Jest in a CommonJS application."
    );
  }
  return 'Reinstall it (npm install), and check that its version is within the peer range this library declares.';
}

/**
 * A feature that needs an optional peer dependency was used, and the package is not installed
 * (`installed: false`), or is installed and failed to load (`installed: true`; the message says
 * why and what to do, `cause` is the loader's error).
 */
export class OptionalDependencyMissingError extends TransactionalMessageConfigurationError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_OPTIONAL_DEPENDENCY_MISSING'`. */
  static override readonly code: string = 'TM_OPTIONAL_DEPENDENCY_MISSING';
  /** Whether the package is installed (and failed to load). */
  readonly installed: boolean;

  constructor(
    readonly packageName: string,
    readonly feature: string,
    override readonly cause?: unknown,
    /** Another package that would do as well (neither is installed). */
    readonly alternative?: string,
  ) {
    const installed = alternative === undefined && cause !== undefined && !isPackageNotInstalled(cause, packageName);
    super(
      installed
        ? `${feature} needs the package '${packageName}', which is installed but failed to load` +
            `${cause instanceof Error ? ` (${cause.message.split('\n')[0]})` : ''}. ${loadFailureFix(cause)}`
        : alternative !== undefined
          ? `${feature} needs the package '${packageName}' or '${alternative}', and neither is installed. Install one (npm install ${packageName}), or do not use ${feature}.`
          : `${feature} needs the package '${packageName}', which is not installed. Install it (npm install ${packageName}), or do not use ${feature}.`,
    );
    this.installed = installed;
  }
}

import { TransactionalMessageConfigurationError } from './configuration.error.js';

/** A feature that needs an optional peer dependency was used, and the package is not installed. */
export class OptionalDependencyMissingError extends TransactionalMessageConfigurationError {
  /** Stable identifier of this error, also on each instance: `error.code === 'TM_OPTIONAL_DEPENDENCY_MISSING'`. */
  static override readonly code: string = 'TM_OPTIONAL_DEPENDENCY_MISSING';

  constructor(
    readonly packageName: string,
    readonly feature: string,
    override readonly cause?: unknown,
  ) {
    super(
      `${feature} needs the package '${packageName}', which could not be loaded` +
        `${cause instanceof Error ? ` (${cause.message})` : ''}. Install it (npm install ${packageName}), or do not use ${feature}.`,
    );
  }
}

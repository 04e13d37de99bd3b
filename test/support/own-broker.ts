import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SERVICES = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/services.sh');

/**
 * A Kafka broker of the test's own, on its own loopback ports, started and stopped through the
 * project's services script (by PID), so a test can stop it without touching the shared broker.
 */
export class OwnBroker {
  readonly brokers: string[];

  constructor(
    private readonly port: number,
    private readonly controllerPort = port + 1,
    /** Broker settings of its own (server.properties keys), e.g. lower request limits. */
    private readonly config: Record<string, string> = {},
  ) {
    this.brokers = [`127.0.0.1:${port}`];
  }

  private env(extra: Record<string, string> = {}) {
    const config = Object.entries(this.config).map(([key, value]) => `${key}=${value}`).join('\n');
    return {
      ...process.env,
      KAFKA_PORT: String(this.port),
      KAFKA_CONTROLLER_PORT: String(this.controllerPort),
      KAFKA_EXTRA_CONFIG: config,
      ...extra,
    };
  }

  async start(): Promise<void> {
    await run('bash', [SERVICES, 'start', 'kafka'], { env: this.env(), timeout: 180_000 });
  }

  async stop(): Promise<void> {
    await run('bash', [SERVICES, 'stop', 'kafka'], { env: this.env(), timeout: 60_000 });
  }

  /** A crash: SIGKILL to the broker's PID (no controlled shutdown), then wait until it is gone. */
  async kill(): Promise<void> {
    await run('bash', [SERVICES, 'stop', 'kafka'], { env: this.env({ KAFKA_STOP_SIGNAL: 'KILL' }), timeout: 60_000 });
  }
}

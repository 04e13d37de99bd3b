import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRASH_EXIT_CODE, WORKER_ENV, type WorkerConfig, type WorkerEvent } from '../worker/protocol.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The worker, compiled against the built package by scripts/test.sh (tsc -p test/faults/worker). */
export const WORKER_SCRIPT = resolve(HERE, '../dist/worker.js');
const LOG_ROOT = resolve(HERE, '../../../.cache/faults');

/**
 * One worker process of a fault test. Its stdout events are collected; its output goes to a log
 * file under .cache/faults/ (printed by `tail()` when a test fails). Signalled by PID only.
 */
export class WorkerProcess {
  readonly events: WorkerEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** The test ended or froze it (SIGKILL, SIGTERM, SIGSTOP): an exit after this is not the worker's doing. */
  private signalled = false;
  private readonly child: ChildProcess;
  private readonly log: WriteStream;

  constructor(
    readonly config: WorkerConfig,
    readonly logFile: string,
  ) {
    const env: NodeJS.ProcessEnv = { ...process.env, [WORKER_ENV]: JSON.stringify(config) };
    delete env.NODE_OPTIONS; // Jest's --experimental-vm-modules is not for the worker
    this.child = spawn(process.execPath, [WORKER_SCRIPT], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.log = createWriteStream(logFile, { flags: 'a' });
    let buffered = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.log.write(chunk);
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('{"event"')) this.events.push(JSON.parse(line) as WorkerEvent);
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => this.log.write(chunk));
    this.exited = new Promise((resolveExit) =>
      this.child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolveExit(this.exitStatus);
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.exitStatus === undefined;
  }

  has(event: WorkerEvent['event']): boolean {
    return this.events.some((e) => e.event === event);
  }

  /** Waits for an event; fails early, with the log's tail, if the process exits first. */
  async waitFor(event: WorkerEvent['event'], timeoutMs = 60_000): Promise<WorkerEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => e.event === event);
      if (found) return found;
      if (!this.alive) throw new Error(`worker ${this.config.name} exited (${JSON.stringify(this.exitStatus)}) before '${event}':\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`worker ${this.config.name} did not report '${event}' in ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.alive) return;
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.signalled = true;
    process.kill(this.pid, signal);
  }

  /**
   * Why the process ended when nothing the test injected ended it: an unhandled rejection or an
   * uncaught exception (the library must never end its host), or an exit nobody asked for.
   * Undefined while it runs, and for an injected kill (by the test, or a 'fault' seam of its own),
   * a graceful stop, the worker script giving up ('failed') or kafkajs' consumer giving up.
   */
  get crash(): string | undefined {
    const crash = this.events.find((e) => e.event === 'crash');
    if (crash) return `${crash.kind}: ${crash.error}`;
    if (this.alive || this.signalled) return undefined;
    if (this.has('fault') || this.has('failed') || this.has('consumer-crashed')) return undefined;
    const { code, signal } = this.exitStatus!;
    if (code === 0 && this.has('closed')) return undefined;
    return code === CRASH_EXIT_CODE ? 'exit code 70 (a crash whose report was lost)' : `ended by itself (${JSON.stringify({ code, signal })})`;
  }

  /** SIGKILL, and wait until it is gone. */
  async kill(): Promise<void> {
    this.signal('SIGCONT'); // a stopped process dies on SIGKILL too, but say so explicitly
    this.signal('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (graceful shutdown), then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Whether the process is stopped (state T in /proc). */
  isStopped(): boolean {
    try {
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
    } catch {
      return false;
    }
  }

  tail(lines = 40): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/** The workers of one test: started under a log directory of the test's own, all stopped (by PID) at the end. */
export class WorkerFleet {
  readonly all: WorkerProcess[] = [];
  private readonly supervised: Supervised[] = [];
  private readonly dir: string;

  constructor(testName: string) {
    this.dir = join(LOG_ROOT, `${testName}-${process.pid}-${Date.now()}`);
    mkdirSync(this.dir, { recursive: true });
  }

  start(config: WorkerConfig): WorkerProcess {
    const n = this.all.filter((w) => w.config.name === config.name).length + 1;
    const worker = new WorkerProcess(config, join(this.dir, `${config.name}.${n}.log`));
    this.all.push(worker);
    return worker;
  }

  /**
   * Keeps one worker of `config` running: a new one is started when it exits (the consumer's
   * kafkajs gives up on a broker that stays away too long), as a process manager would.
   */
  supervise(config: WorkerConfig): Supervised {
    let current = this.start(config);
    const supervised: Supervised = {
      restarts: 0,
      stopped: false,
      current: () => current,
      stop: async () => {
        supervised.stopped = true;
        await loop;
        await current.stop();
      },
    };
    const loop = (async () => {
      while (!supervised.stopped) {
        await Promise.race([current.exited, new Promise((r) => setTimeout(r, 200))]);
        if (!supervised.stopped && !current.alive) {
          supervised.restarts++;
          current = this.start(config);
        }
      }
    })();
    this.supervised.push(supervised);
    return supervised;
  }

  /**
   * Stops every worker, then fails if any of them crashed (see WorkerProcess.crash): a test passes
   * only if no process of it was ended by the library.
   */
  async stopAll(): Promise<void> {
    await Promise.all(this.supervised.map((s) => s.stop()));
    await Promise.all(this.all.map((w) => w.stop(5_000)));
    const crashed = this.crashed();
    if (crashed.length > 0) {
      throw new Error(
        `${crashed.length} worker process(es) crashed:\n` +
          crashed.map((w) => `--- ${w.config.name} (pid ${w.pid}): ${w.crash}\n${w.tail(30)}`).join('\n'),
      );
    }
  }

  /** The workers that crashed so far (see WorkerProcess.crash). */
  crashed(): WorkerProcess[] {
    return this.all.filter((w) => w.crash !== undefined);
  }

  /** The last lines of every worker's log, for a failure message. */
  tails(lines = 15): string {
    return this.all.map((w) => `--- ${w.config.name} (pid ${w.pid}, ${JSON.stringify(w.exitStatus ?? 'running')})\n${w.tail(lines)}`).join('\n');
  }

  get logDir(): string {
    return this.dir;
  }
}

export interface Supervised {
  restarts: number;
  stopped: boolean;
  current(): WorkerProcess;
  stop(): Promise<void>;
}

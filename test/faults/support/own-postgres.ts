import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The PostgreSQL server binaries of the machine's installation (Debian: /usr/lib/postgresql/<major>/bin). */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).sort().reverse() : [];
  const found = majors.map((m) => join(root, m, 'bin')).find((dir) => existsSync(join(dir, 'initdb')));
  if (!found) throw new Error('PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql: install the postgresql package');
  return found;
}

/**
 * A PostgreSQL server of the test's own (initdb in a temporary directory, its own loopback port),
 * so that a test can terminate its connections and restart it without touching the shared server
 * other tests use. Runs as the `postgres` user when the tests run as root (PostgreSQL refuses root).
 * Stopped by the PID in its postmaster.pid.
 */
export class OwnPostgres {
  readonly url: string;
  private readonly dir: string;
  private readonly bin = binDir();

  constructor(readonly port: number) {
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    this.dir = mkdtempSync(join(tmpdir(), 'tm-faults-pg-'));
  }

  private as(args: string[]): [string, string[]] {
    return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', ...args]] : [args[0], args.slice(1)];
  }

  private async exec(args: string[], timeout = 120_000): Promise<void> {
    const [command, rest] = this.as(args);
    await run(command, rest, { timeout });
  }

  async init(): Promise<void> {
    if (process.getuid?.() === 0) chownSync(this.dir, uidOf('postgres'), gidOf('postgres'));
    await this.exec([join(this.bin, 'initdb'), '-D', join(this.dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
    await this.start();
  }

  async start(): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
    await this.exec([join(this.bin, 'pg_ctl'), '-D', join(this.dir, 'data'), '-o', options, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
  }

  /** The postmaster's PID, from postmaster.pid. */
  pid(): number | undefined {
    try {
      return Number(readFileSync(join(this.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return undefined;
    }
  }

  /**
   * Stops the server by its PID. `crash` sends SIGQUIT (immediate shutdown: every backend is
   * killed, the next start runs crash recovery); otherwise SIGINT (fast shutdown).
   */
  async stop(crash = false): Promise<void> {
    const pid = this.pid();
    if (!pid) return;
    try {
      process.kill(pid, crash ? 'SIGQUIT' : 'SIGINT');
    } catch {
      return;
    }
    const deadline = Date.now() + 60_000;
    while (alive(pid)) {
      if (Date.now() > deadline) process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async restart(crash = true): Promise<void> {
    await this.stop(crash);
    await this.start();
  }

  async destroy(): Promise<void> {
    await this.stop(false);
    rmSync(this.dir, { recursive: true, force: true });
  }

  serverLog(): string {
    try {
      return readFileSync(join(this.dir, 'server.log'), 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '(no server log)';
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function passwdEntry(user: string): string[] {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`user ${user} not found in /etc/passwd: the PostgreSQL server package creates it`);
  return line.split(':');
}
const uidOf = (user: string) => Number(passwdEntry(user)[2]);
const gidOf = (user: string) => Number(passwdEntry(user)[3]);

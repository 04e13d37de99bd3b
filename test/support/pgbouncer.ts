import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { POSTGRES_URL } from './databases.js';

const run = promisify(execFile);
const BUILD = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/pgbouncer.sh');

/**
 * A real PgBouncer (1.24.1, built by scripts/pgbouncer.sh) of the test's own in front of the
 * shared PostgreSQL, on its own loopback port, in transaction mode with a small server pool (so
 * transactions move between server connections). `maxPreparedStatements` 0: it does not keep
 * prepared statements (as PgBouncer before 1.21); above 0: it does. PgBouncer refuses to run as
 * root: run as the `postgres` user then (as Debian's package does). Stopped by its PID.
 */
export class OwnPgBouncer {
  private process: ChildProcess | undefined;
  private dir: string | undefined;
  private output = '';

  constructor(
    readonly port: number,
    private readonly maxPreparedStatements: number,
    private readonly serverPoolSize = 3,
  ) {}

  /** A PostgreSQL URL of `database` through this PgBouncer. */
  url(database: string): string {
    const url = new URL(POSTGRES_URL);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    url.pathname = `/${database}`;
    return url.toString();
  }

  async start(): Promise<void> {
    const { stdout } = await run('bash', [BUILD], { timeout: 600_000 });
    const binary = stdout.trim().split('\n').at(-1)!;
    const server = new URL(POSTGRES_URL);
    const user = decodeURIComponent(server.username || 'postgres');
    this.dir = await mkdtemp(join(tmpdir(), 'tm-pgbouncer-'));
    await writeFile(join(this.dir, 'users.txt'), `"${user}" ""\n`);
    await writeFile(
      join(this.dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `* = host=${server.hostname} port=${server.port || 5432}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${this.port}`,
        'unix_socket_dir =',
        'auth_type = trust',
        `auth_file = ${join(this.dir, 'users.txt')}`,
        'pool_mode = transaction',
        `default_pool_size = ${this.serverPoolSize}`,
        'max_client_conn = 200',
        `max_prepared_statements = ${this.maxPreparedStatements}`,
        'ignore_startup_parameters = extra_float_digits,options',
        'server_reset_query =',
        'log_connections = 0',
        'log_disconnections = 0',
        '',
      ].join('\n'),
    );
    const asRoot = process.getuid?.() === 0;
    const ids = asRoot ? await postgresIds() : undefined;
    // A copy beside its configuration: the checkout may sit where the postgres user cannot go.
    const executable = join(this.dir, 'pgbouncer');
    await copyFile(binary, executable);
    await chmod(executable, 0o755);
    if (ids) {
      await chown(this.dir, ids.uid, ids.gid);
      await chmod(this.dir, 0o755);
    }
    const child = spawn(executable, [join(this.dir, 'pgbouncer.ini')], { stdio: ['ignore', 'pipe', 'pipe'], ...(ids ?? {}) });
    this.process = child;
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    const deadline = Date.now() + 15_000;
    while (!(await listening(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`PgBouncer did not start on 127.0.0.1:${this.port} (exit ${child.exitCode}): ${this.output.slice(-2_000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5_000)))]);
      clearTimeout(timer);
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid), gid: Number(gid) };
}

function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), done(true)));
    socket.once('error', () => done(false));
  });
}

// What the fault tests and their worker processes share: the worker's configuration (passed as
// JSON in TM_FAULT_WORKER) and the events it prints on stdout, one JSON object per line.

/** The intended outcome of one order: how the producer ends its local transaction. */
export type Intent = 'commit' | 'rollback' | 'unknown-commit' | 'unknown-rollback';

/** A crash seam in the worker's publisher or producer loop: the process kills or stops itself there. */
export type Fault =
  /** SIGKILL itself on the `at`-th publish call, after the claim and before anything reaches Kafka. */
  | { kind: 'kill-before-publish'; at: number }
  /** SIGKILL itself right after the `at`-th publish was acknowledged by Kafka, before the relay marks it. */
  | { kind: 'kill-after-publish'; at: number }
  /** SIGSTOP itself in the `at`-th connect call (after the claim, before the lease re-check); SIGCONT resumes it. */
  | { kind: 'stop-in-connect'; at: number }
  /** SIGSTOP itself at the start of the `at`-th publish call (after the lease re-check, before anything reaches Kafka); SIGCONT resumes it. */
  | { kind: 'stop-before-publish'; at: number }
  /** Explicit API: SIGKILL itself after storing the `at`-th half message, before its local transaction. */
  | { kind: 'kill-after-half'; at: number }
  /** Explicit API: SIGKILL itself after the `at`-th local transaction committed, before commit(). */
  | { kind: 'kill-after-local'; at: number }
  /** The harness's own check: a rejection nobody handles, `afterMs` after 'ready' (what a library bug would do). */
  | { kind: 'unhandled-rejection'; afterMs: number };

/** How the worker's check handler answers. */
export type CheckMode =
  /** Looks the order up: paid → COMMIT, cancelled → ROLLBACK, absent and older than 2 s → ROLLBACK, else UNKNOWN. */
  | 'lookup'
  | 'throw'
  | 'hang'
  | 'unknown'
  /** Like 'lookup', after 400 ms (so that a shutdown finds checks in flight). */
  | 'slow'
  /** No check handler is registered at all. */
  | 'none';

export interface WorkerConfig {
  /** `app`: producer loop + relay + check handler (any part can be off); `consumer`: Kafka consumer with the inbox; `explicit`: the explicit two-phase API. */
  role: 'app' | 'consumer' | 'explicit';
  /** A label for logs and the fault tables. */
  name: string;
  database: { type: 'postgres' | 'mariadb'; url: string };
  tableName: string;
  brokers: string[];
  topic: string;
  producerGroup: string;
  /** Producer loop: one sequential writer per key; each key is written up to `perKey` orders (across restarts). */
  produce?: {
    keys: string[];
    perKey: number;
    /** Percentages of commit / rollback / unknown-commit / unknown-rollback; default all commit. */
    mix?: [number, number, number, number];
    /** A pause after each order of a key, to spread the writes over time (default 0). */
    pauseMs?: number;
  };
  relay: boolean;
  /** Relay options passed to the module (leaseMs, batchSize, ...). */
  relayOptions?: Record<string, unknown>;
  checkMode: CheckMode;
  checkOptions?: Record<string, unknown>;
  checkImmunityMs?: number;
  fault?: Fault;
  /** Consumer group of the `consumer` role. */
  consumerGroup?: string;
  /** kafkajs `partitionsConsumedConcurrently` of the consumer (default 1). */
  consumerConcurrency?: number;
  /** Explicit role: how many half messages to send (keys `x-<i % 4>`). */
  explicitCount?: number;
  /** The Kafka client of the relay's publisher (default: TM_KAFKA_CLIENT, else the installed one). */
  kafkaClient?: 'kafkajs' | '@platformatic/kafka';
  /** kafka.exactlyOnce's names: the relay publishes in Kafka transactions per slot (docs/exactly-once.md). */
  exactlyOnce?: { transactionalIdPrefix: string; marksTopic: string };
  /** On SIGTERM, close the application and the DataSource and let the process end by itself (no process.exit). */
  exitByItself?: boolean;
}

/** Lines the worker prints on stdout. */
export type WorkerEvent =
  | { event: 'ready'; pid: number }
  | { event: 'produced'; pid: number; count: number }
  | { event: 'closed'; pid: number }
  | { event: 'fault'; pid: number; kind: Fault['kind']; ids: string[] }
  | { event: 'consumer-crashed'; pid: number; error: string }
  /** An unhandled rejection or uncaught exception reached the process (exit code CRASH_EXIT_CODE): always a test failure. */
  | { event: 'crash'; pid: number; kind: 'unhandledRejection' | 'uncaughtException'; error: string }
  /** The worker's own script gave up (its database never came up, the application did not boot): exit code 1. */
  | { event: 'failed'; pid: number; error: string };

/** The exit code of a worker that an unhandled rejection or uncaught exception ended. */
export const CRASH_EXIT_CODE = 70;

export const WORKER_ENV = 'TM_FAULT_WORKER';

import type { DataSource } from 'typeorm';
import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error.js';
import { DEFAULT_CHECK_OPTIONS, DEFAULT_INBOX_OPTIONS, DEFAULT_OPTIONS, DEFAULT_RELAY_OPTIONS, resolveOptions } from './resolve-options.js';

const dataSource = { options: { type: 'postgres' }, transaction: () => undefined } as unknown as DataSource;

describe('resolveOptions', () => {
  const kafka = { brokers: ['127.0.0.1:9092'] };

  it('merges the defaults', () => {
    expect(resolveOptions({ dataSource, producerGroup: 'shop', kafka })).toEqual({
      name: 'default',
      dataSource,
      producer: true,
      producerGroup: 'shop',
      tableName: DEFAULT_OPTIONS.tableName,
      checkImmunityMs: 10_000,
      maxMessageBytes: 1_000_000,
      queriesOutsideTransaction: 'error',
      joinClsTransactions: true,
      clsConnectionName: undefined,
      acquireTimeoutMs: 10_000,
      preparedStatements: 'auto',
      kafka,
      publisher: undefined,
      relay: DEFAULT_RELAY_OPTIONS,
      check: DEFAULT_CHECK_OPTIONS,
      inbox: DEFAULT_INBOX_OPTIONS,
      metrics: true,
    });
  });

  it('merges nested relay and check options over their defaults', () => {
    const resolved = resolveOptions({ dataSource, producerGroup: 'shop', kafka, relay: { batchSize: 10 }, check: { maxChecks: 3 } });
    expect(resolved.relay).toEqual({ ...DEFAULT_RELAY_OPTIONS, batchSize: 10 });
    expect(resolved.check).toEqual({ ...DEFAULT_CHECK_OPTIONS, maxChecks: 3 });
  });

  it('without a producer group the instance only consumes: no relay, the inbox on, sending options refused', () => {
    const resolved = resolveOptions({ dataSource });
    expect(resolved).toMatchObject({ producer: false, relay: { enabled: false }, inbox: { enabled: true } });
    expect(() => resolveOptions({ dataSource, kafka })).toThrow("option 'producerGroup' is undefined; expected a producer group, since 'kafka' is set");
    expect(() => resolveOptions({ dataSource, relay: { enabled: true } })).toThrow(/since relay.enabled is true/);
  });

  it('the relay can be turned off, and then needs no publisher', () => {
    expect(resolveOptions({ dataSource, producerGroup: 'shop', relay: { enabled: false } }).relay.enabled).toBe(false);
  });

  it.each([
    [{ producerGroup: 'shop' }, "'dataSource' is undefined"],
    [{ dataSource: { options: { type: 'oracle' }, transaction: () => 1 }, producerGroup: 'shop' }, 'DataSource type "oracle" is not supported'],
    [{ dataSource, producerGroup: 'a'.repeat(256) }, "'producerGroup'"],
    [{ dataSource, producerGroup: 'shop', checkImmunityMs: 0.5 }, "'checkImmunityMs' is 0.5"],
    [{ dataSource, producerGroup: 'shop', maxMessageBytes: 2 ** 40 }, "'maxMessageBytes' is 1099511627776"],
    [{ dataSource, producerGroup: 'shop', joinClsTransactions: 'yes' }, "'joinClsTransactions' is \"yes\""],
    [{ dataSource, producerGroup: 'shop', preparedStatements: 'no' }, "'preparedStatements' is \"no\"; expected 'auto', true or false"],
    [{ dataSource, producerGroup: 'shop', clsConnectionName: '' }, "'clsConnectionName' is \"\""],
    [{ dataSource, producerGroup: 'shop', tabelName: 'x' }, "'tabelName' is \"x\"; expected no such option"],
    [{ dataSource, producerGroup: 'shop' }, "'kafka' is undefined; expected the Kafka client configuration"],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: [] } }, "'kafka.brokers' is []"],
    [{ dataSource, producerGroup: 'shop', kafka: {}, publisher: {} }, "either kafka (the Kafka publisher) or publisher, not both"],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'], connectionTimeout: 500 } }, "'kafka.connectionTimeout' is 500; expected kafka.connectionTimeoutMs (in ms)"],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'], logLevel: 4 } }, "'kafka.logLevel' is 4; expected no value: kafka.logLevel was removed in 0.2.0. The client's own log lines go to Nest's Logger at debug"],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'], client: 'node-rdkafka' } }, "'kafka.client' is \"node-rdkafka\"; expected one of 'kafkajs', '@platformatic/kafka'"],
    [
      { dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'], client: '@platformatic/kafka', authenticationTimeoutMs: 5000 } },
      "'kafka.authenticationTimeoutMs' is 5000; expected no value with kafka.client '@platformatic/kafka'",
    ],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: ['localhost'] } }, "'kafka.brokers' is [\"localhost\"]; expected a non-empty array of 'host:port' strings"],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'], sasl: { mechanism: 'gssapi' } } }, "'kafka.sasl.mechanism' is \"gssapi\""],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'], requestTimeoutMs: -1 } }, "'kafka.requestTimeoutMs' is -1"],
    [{ dataSource, producerGroup: 'shop', publisher: { publish() {} } }, 'a MessagePublisher (its connect() is missing)'],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'] }, relay: { batchsize: 5 } }, "'relay.batchsize' is 5; expected no such option; known options of relay are"],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'] }, relay: { leaseMs: 0 } }, "'relay.leaseMs' is 0"],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'] }, relay: { backoffInitialMs: 10, backoffMaxMs: 5 } }, "'relay.backoffMaxMs' is 5; expected a whole number of milliseconds from 10"],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'] }, check: { onExhausted: 'drop' } }, "'check.onExhausted' is \"drop\"; expected 'rollback' or 'park'"],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'] }, relay: { onDead: 'drop' } }, "'relay.onDead' is \"drop\"; expected 'hold' or 'skip'"],
    [
      { dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'] }, relay: { ownership: 'partitions' } },
      "'relay.ownership' is \"partitions\"; expected no such option any more: key buckets are the only relay design",
    ],
    [
      { dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'] }, relay: { ownership: 'rows' } },
      "'relay.ownership' is \"rows\"; expected no such option any more: key buckets are the only relay design. Remove the option (its last value, 'buckets', is still accepted and changes nothing); to move relays of the row-lease design over, follow docs/upgrading.md",
    ],
    [{ dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'] }, check: 5 }, "'check' is 5; expected an object"],
  ])('refuses %p', (options, expected) => {
    expect(() => resolveOptions(options as never)).toThrow(InvalidModuleOptionsError);
    expect(() => resolveOptions(options as never)).toThrow(expected);
  });

  it("accepts relay.ownership 'buckets', the one design there is, and changes nothing", () => {
    const resolved = resolveOptions({ dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'] }, relay: { ownership: 'buckets' } } as never);
    expect(resolved.relay).toEqual(DEFAULT_RELAY_OPTIONS);
    expect(resolved.relay).not.toHaveProperty('ownership');
  });

  describe('durations of 30 days and a year', () => {
    const DAY = 86_400_000;
    /** Every duration option: where it sits, and whether it reaches past 2^31 ms (only compared with the database clock). */
    const DURATIONS: Array<[path: string, long: boolean]> = [
      ['checkImmunityMs', false],
      ['acquireTimeoutMs', false],
      ['relay.pollIntervalMs', false],
      ['relay.leaseMs', false],
      ['relay.backoffInitialMs', false],
      ['relay.backoffMaxMs', false],
      ['relay.retentionMs', true],
      ['relay.pruneIntervalMs', false],
      ['relay.shutdownTimeoutMs', false],
      ['check.intervalMs', false],
      ['check.maxAgeMs', true],
      ['check.handlerTimeoutMs', false],
      ['inbox.retentionMs', true],
      ['inbox.pruneIntervalMs', false],
      ['kafka.connectionTimeoutMs', false],
      ['kafka.requestTimeoutMs', false],
    ];
    const withValue = (path: string, value: number) => {
      const [group, name] = path.includes('.') ? path.split('.') : [undefined, path];
      const base: Record<string, unknown> = { dataSource, producerGroup: 'shop', kafka: { brokers: ['b:1'], client: 'kafkajs' } };
      if (!group) return { ...base, [name]: value };
      return { ...base, [group]: { ...(base[group] as object), [name]: value } };
    };
    const read = (resolved: Record<string, unknown>, path: string) => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], resolved);

    it.each(DURATIONS.flatMap(([path, long]) => [30, 365].map((days) => [path, days, long] as const)))('%s at %i days (compared with the database clock only: %p)', (path, days, long) => {
      const options = withValue(path, days * DAY);
      if (long) {
        expect(read(resolveOptions(options as never) as never, path)).toBe(days * DAY);
      } else {
        // A timer or an int column: refused at boot, naming the option, the value and the limit.
        expect(() => resolveOptions(options as never)).toThrow(
          `option '${path}' is ${days * DAY}; expected a whole number of milliseconds from`,
        );
        expect(() => resolveOptions(options as never)).toThrow('to 2147483647 (2^31 - 1: about 24.8 days)');
      }
    });

    it('refuses a long duration past a year, saying so', () => {
      expect(() => resolveOptions(withValue('relay.retentionMs', 366 * DAY) as never)).toThrow('to 31536000000 (365 days)');
    });
  });
});


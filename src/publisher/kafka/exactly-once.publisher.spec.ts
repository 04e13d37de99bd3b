import { OptionalDependencyMissingError } from '../../errors/optional-dependency-missing.error.js';
import { PartialPublishError } from '../../errors/partial-publish.error.js';
import { BUCKETS_PER_SLOT, ExactlyOnceKafkaPublisher, resolveExactlyOnceScope, SLOTS } from './exactly-once.publisher.js';

const publisher = () =>
  new ExactlyOnceKafkaPublisher({ brokers: ['127.0.0.1:1'] }, async () => '@platformatic/kafka', { transactionalIdPrefix: 'p', marksTopic: 'm' }, 'test');

describe('ExactlyOnceKafkaPublisher', () => {
  it('leases 8 slots of 32 key buckets', () => {
    expect([SLOTS, BUCKETS_PER_SLOT, publisher().bucketsPerSlot]).toEqual([8, 32, 32]);
  });

  it('a fenced send (another relay took the slot over) is an outage for this relay, also inside a partial publish', () => {
    const fenced = Object.assign(new Error('fenced'), { apiId: 'PRODUCER_FENCED' });
    expect(publisher().classify(fenced)).toEqual({ kind: 'transport' });
    expect(publisher().classify(new PartialPublishError(new Set(['a']), fenced, 2))).toEqual({ kind: 'transport' });
    expect(publisher().classify({ type: 'INVALID_PRODUCER_EPOCH' })).toEqual({ kind: 'transport' });
  });

  it('@platformatic/kafka missing (it reads the marks topic): a configuration error', () => {
    expect(publisher().classify(new OptionalDependencyMissingError('@platformatic/kafka', 'kafka.exactlyOnce'))).toEqual({ kind: 'config' });
  });

  it('default names come from the producer group and the table; a given name wins', () => {
    expect(resolveExactlyOnceScope(true, { producerGroup: 'shop', tableName: 'orders_msg' })).toEqual({ transactionalIdPrefix: 'shop.orders_msg', marksTopic: 'shop.orders_msg.tm-marks' });
    expect(resolveExactlyOnceScope({ marksTopic: 'mine' }, { producerGroup: 'shop', tableName: 't' })).toEqual({ transactionalIdPrefix: 'shop.t', marksTopic: 'mine' });
    expect(resolveExactlyOnceScope(false, { producerGroup: 'shop', tableName: 't' })).toBeUndefined();
    expect(resolveExactlyOnceScope(undefined, undefined)).toBeUndefined();
  });
});

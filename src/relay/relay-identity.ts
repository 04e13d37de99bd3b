import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** @internal Names this relay instance in leases and check records: host, process and a random part. */
export function relayIdentity(producerGroup: string): string {
  return `${producerGroup}@${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { LOGGER_CONTEXT } from '../common/constants.js';

/** @internal Whether `address` (as a listening socket reports it) is a loopback address. */
export function isLoopback(address: string): boolean {
  const a = address.replace(/^::ffff:/, '');
  return a === '::1' || a === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(a);
}

/** What a listening HTTP server reports and emits (Node's net.Server). */
interface ListeningServer {
  listening?: boolean;
  address(): AddressInfo | string | null;
  once(event: 'listening', listener: () => void): unknown;
}

/**
 * @internal With `allowUnguarded: true`, says loudly (an error line) when the application listens
 * beyond loopback: then anyone who reaches the port can commit, roll back, replay and purge
 * messages. Checked when the server starts listening (or at bootstrap, if it already does).
 */
export function unguardedExposureCheck(path: string): new (...args: never[]) => OnApplicationBootstrap {
  @Injectable()
  class UnguardedExposureCheck implements OnApplicationBootstrap {
    private readonly logger = new Logger(LOGGER_CONTEXT);

    constructor(private readonly adapterHost: HttpAdapterHost) {}

    onApplicationBootstrap(): void {
      const server = this.adapterHost?.httpAdapter?.getHttpServer?.() as ListeningServer | undefined;
      if (!server || typeof server.address !== 'function') return;
      if (server.listening) this.check(server);
      else server.once('listening', () => this.check(server));
    }

    private check(server: ListeningServer): void {
      const address = server.address();
      if (!address || typeof address === 'string' || isLoopback(address.address)) return;
      this.logger.error(
        `The admin API at /${path} has NO guard (allowUnguarded: true) and the application listens on ${address.address}:${address.port}, ` +
          `beyond loopback: anyone who reaches that port can commit, roll back, replay and purge messages. Give ` +
          `TransactionalMessageAdminModule.forRoot() a guard, or listen on 127.0.0.1 only.`,
      );
    }
  }
  return UnguardedExposureCheck;
}

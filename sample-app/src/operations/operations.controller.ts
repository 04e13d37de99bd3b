import { Controller, Get, Req, Res } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { TransactionalMessageHealthIndicator } from 'nestjs-transactional-message';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { prometheusExporter } from './metrics.js';

/** What an operator (and Prometheus, and the orchestrator's probes) reads. */
@Controller()
export class OperationsController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly messages: TransactionalMessageHealthIndicator,
  ) {}

  /** Prometheus scrapes this. */
  @Get('metrics')
  scrape(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
    prometheusExporter().getMetricsRequestHandler(request, response);
  }

  /** Readiness: the relay runs, Kafka answers, nothing waits too long. */
  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.messages.isHealthy('messages', { maxLagMs: 60_000 })]);
  }
}

import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

let exporter: PrometheusExporter | undefined;

/**
 * OpenTelemetry metrics for the process, exported in Prometheus's format by the shop's own
 * GET /metrics (no second port). Registered once, before the application is created, as
 * OpenTelemetry requires; the library's meter finds it.
 */
export function prometheusExporter(): PrometheusExporter {
  if (!exporter) {
    exporter = new PrometheusExporter({ preventServerStart: true });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
  }
  return exporter;
}

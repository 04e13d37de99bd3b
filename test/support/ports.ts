/**
 * Ports of what the tests start themselves (their own Kafka brokers, the fault tests' own
 * PostgreSQL). Each comes from its variable, else from its default plus TM_TEST_PORT_OFFSET
 * (default 0): a second copy of the suite on the same machine sets only the offset (e.g. 1000),
 * with KAFKA_PORT for the shared broker (KAFKA_BROKERS follows it).
 */
export function testPort(variable: string, fallback: number): number {
  const set = process.env[variable];
  if (set) return Number(set);
  return fallback + Number(process.env.TM_TEST_PORT_OFFSET ?? 0);
}

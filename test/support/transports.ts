/**
 * Where the servers of the other `@nestjs/microservices` transports listen (RabbitMQ, NATS,
 * Mosquitto, Redis: Debian's packages, started by `scripts/services.sh` when they are down). Each
 * from its variable, else the default port on loopback; the same variables as scripts/services.sh.
 */
const port = (variable: string, fallback: number) => Number(process.env[variable] || fallback);

export const TRANSPORT_URLS = {
  rabbitmq: process.env.RABBITMQ_URL ?? `amqp://guest:guest@127.0.0.1:${port('RABBITMQ_PORT', 5672)}`,
  nats: process.env.NATS_URL ?? `nats://127.0.0.1:${port('NATS_PORT', 4222)}`,
  mqtt: process.env.MQTT_URL ?? `mqtt://127.0.0.1:${port('MQTT_PORT', 1883)}`,
  redis: process.env.REDIS_URL ?? `redis://127.0.0.1:${port('REDIS_PORT', 6379)}`,
};

/** What a `@TransactionCheckHandler` receives: the half message whose local transaction is in doubt. */
export interface HalfMessage<TBody = unknown> {
  readonly id: string;
  readonly producerGroup: string;
  readonly topic: string;
  readonly key: string | null;
  readonly tags: readonly string[];
  readonly properties: Readonly<Record<string, string>>;
  /** The body, decoded: parsed JSON, or a Buffer for raw bytes. */
  readonly body: TBody;
  /** When the half message was stored (database clock). */
  readonly bornAt: Date;
  /** The number of this check: 1 on the first check, 2 on the second, ... (RocketMQ's check times). */
  readonly checkCount: number;
}

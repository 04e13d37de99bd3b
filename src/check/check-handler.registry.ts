import { TransactionalMessageError } from '../errors/transactional-message.error.js';
import type { HalfMessage } from './half-message.interface.js';

/** @internal A discovered `@TransactionCheckHandler`. */
export interface CheckHandlerRef {
  label: string;
  invoke(message: HalfMessage): unknown;
}

/** @internal The check handlers of this application, by topic. */
export class CheckHandlerRegistry {
  private readonly byTopic = new Map<string, CheckHandlerRef>();
  private catchAll: CheckHandlerRef | undefined;

  add(topics: string[] | null, handler: CheckHandlerRef): void {
    if (topics === null) {
      if (this.catchAll) {
        throw new TransactionalMessageError(
          `Two catch-all @TransactionCheckHandler methods: ${this.catchAll.label} and ${handler.label}. Keep one, or give them topics.`,
        );
      }
      this.catchAll = handler;
      return;
    }
    for (const topic of topics) {
      const existing = this.byTopic.get(topic);
      if (existing) {
        throw new TransactionalMessageError(
          `Two @TransactionCheckHandler methods for topic '${topic}': ${existing.label} and ${handler.label}. A topic has one check handler.`,
        );
      }
      this.byTopic.set(topic, handler);
    }
  }

  clear(): void {
    this.byTopic.clear();
    this.catchAll = undefined;
  }

  find(topic: string): CheckHandlerRef | undefined {
    return this.byTopic.get(topic) ?? this.catchAll;
  }

  /** Topics with a handler, or null when a catch-all handles every topic. */
  topics(): string[] | null {
    return this.catchAll ? null : [...this.byTopic.keys()];
  }

  get isEmpty(): boolean {
    return !this.catchAll && this.byTopic.size === 0;
  }

  describe(): string {
    const parts = [...this.byTopic].map(([topic, h]) => `${topic} → ${h.label}`);
    if (this.catchAll) parts.push(`* → ${this.catchAll.label}`);
    return parts.join(', ') || 'none';
  }
}

/** @internal Metadata keys of the consumer-side decorators. */
export const INBOX_METADATA = 'nestjs-transactional-message:inbox';
export const TAG_FILTER_METADATA = 'nestjs-transactional-message:tag-filter';

/** @internal What `@Inbox` records on a handler. */
export interface InboxMetadata {
  consumer: string | undefined;
  /** The registration whose inbox records the message (`'default'` without one). */
  instance: string;
}

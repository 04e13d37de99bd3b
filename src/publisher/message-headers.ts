/** Header with the message id; consumers deduplicate on it. */
export const MESSAGE_ID_HEADER = 'tm-message-id';
/** Header with the producer group that sent the message. */
export const PRODUCER_GROUP_HEADER = 'tm-producer-group';
/** Header with the message's tags, comma-separated. */
export const TAGS_HEADER = 'tm-tags';
/** Header with the body's content type: `application/json` or `application/octet-stream`. */
export const CONTENT_TYPE_HEADER = 'tm-content-type';
/** Header with the message key (also the Kafka record key). */
export const KEY_HEADER = 'tm-key';

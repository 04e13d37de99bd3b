// nestjs-transactional-message/testing: helpers for the tests of applications that use the library.

export {
  captureTransactionalMessages,
  type CapturedMessage,
  type CaptureOptions,
  type MessageCapture,
} from './capture-messages.js';

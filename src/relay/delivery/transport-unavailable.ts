/** @internal Thrown inside a relay cycle when the downstream cannot be reached; the loop backs off. */
export class TransportUnavailable extends Error {
  constructor(
    message: string,
    /** The publisher's configuration is wrong (authentication, authorization, TLS), not an outage. */
    readonly config = false,
  ) {
    super(message);
  }
}

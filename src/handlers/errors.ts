// How a handler says what kind of failure it had. Any other thrown error is retried with
// backoff until the handler's `retries` run out.

/** Retry after `delayMs` (default 60 s): the world is not ready yet (a dependency is missing, a quota is full). */
export class TemporaryError extends Error {
  override name = "TemporaryError";
  readonly reason = "Temporary";
  readonly delayMs: number;
  constructor(message: string, options: { delayMs?: number; cause?: unknown } = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.delayMs = options.delayMs ?? 60_000;
  }
}

/** Do not retry: the object is wrong and retrying cannot help. Recorded in progress and as a Warning event. */
export class PermanentError extends Error {
  override name = "PermanentError";
  readonly reason = "Permanent";
}

/** A handler ran out of time (`timeoutMs`): treated as permanent. */
export class HandlerTimeoutError extends PermanentError {
  override name = "HandlerTimeoutError";
}

// How a handler says what kind of failure it had. Any other thrown error is retried with
// backoff until the handler's `attempts` run out.
import { TerminalError } from "../core/errors.js";

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

/**
 * Do not retry: the object is wrong and retrying cannot help. Recorded in progress and as a
 * Warning event. A {@link TerminalError}: the same thing at both levels.
 */
export class PermanentError extends TerminalError {
  override name = "PermanentError";
  override readonly reason: string = "Permanent";
}

/** A handler ran out of time (`timeoutMs`): treated as permanent. */
export class HandlerTimeoutError extends PermanentError {
  override name = "HandlerTimeoutError";
  override readonly reason: string = "HandlerTimeout";
}

/** A handler failed more often than its `attempts` allow: permanent; `cause` is the last error. */
export class HandlerRetriesError extends PermanentError {
  override name = "HandlerRetriesError";
  override readonly reason: string = "HandlerRetries";
}

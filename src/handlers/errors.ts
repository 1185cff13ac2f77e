// How a handler says what kind of failure it had. Any other thrown error is retried with
// backoff until the handler's `attempts` run out.
import { TerminalError } from "../core/errors.js";
import { backoffDelay } from "../core/retry.js";

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

/**
 * The handler level's retry delay: how long to wait after failed attempt `retries + 1`. A
 * {@link TemporaryError} says it itself (`delayMs`); anything else waits by the one backoff rule
 * (`backoffDelay` in core/retry.ts): `backoff.ms`, doubled per retry up to 60 s when
 * `backoff.doubling` (handlers and startup hooks: 1 s, 2 s, 4 s …), or the same each time
 * (timers: their interval; daemons: their `backoffMs`). TerminalErrors are not retried at all:
 * callers check them first.
 */
export function retryDelay(error: unknown, retries: number, backoff: { ms: number; doubling: boolean }): number {
  if (error instanceof TemporaryError) return error.delayMs;
  return backoffDelay({ baseMs: backoff.ms, maxMs: MAX_BACKOFF_MS, factor: backoff.doubling ? 2 : 1 }, retries);
}

/** The longest doubling backoff between two attempts. */
export const MAX_BACKOFF_MS = 60_000;

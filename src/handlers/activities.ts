// Operator-wide activities (kopf's name): startup handlers, retried before anything acts, and
// cleanup handlers after a graceful stop. Startup retries follow the handler level's rule
// (`retryDelay`) in the one retry loop (`retrying`), on the clock they are given.
import type { Clock } from "../core/clock.js";
import { TerminalError } from "../core/errors.js";
import { retrying } from "../core/retry.js";
import { retryDelay } from "./errors.js";
import type { ActivityContext, StartupOptions } from "./registry.js";

/** A registered startup handler. */
export interface Startup {
  fn: (ctx: ActivityContext) => Promise<void> | void;
  options: StartupOptions;
}

/**
 * Runs the startup handlers in order, each until it succeeds: a TemporaryError after its delay,
 * other errors with backoff. Resolves true when all succeeded, false when `signal` stopped
 * them; rejects with a TerminalError or the error of a handler's last allowed attempt.
 */
export async function runStartups(startups: readonly Startup[], ctx: Omit<ActivityContext, "retries">, signal: AbortSignal, clock: Clock): Promise<boolean> {
  for (const startup of startups) {
    const { attempts, backoffMs = 1_000 } = startup.options;
    const outcome = await retrying(async (retries) => void (await startup.fn({ ...ctx, retries })), {
      clock,
      signal,
      delayOf: (error, retries) => (error instanceof TerminalError || (attempts !== undefined && retries + 1 >= attempts) ? undefined : retryDelay(error, retries, { ms: backoffMs, doubling: true })),
      onRetry: (error, retries, delayMs) => ctx.logger.error({ err: error, handler: startup.fn.name || "startup", retries: retries + 1, delayMs }, "startup handler failed: will retry"),
    });
    if ("error" in outcome) throw outcome.error;
    if (!outcome.done) return false; // stopped while it was being retried
  }
  return true;
}

/** Runs the cleanup handlers in order after a graceful stop; a failure is logged and the next runs. */
export async function runCleanups(cleanups: readonly ((ctx: ActivityContext) => Promise<void> | void)[], ctx: Omit<ActivityContext, "retries">): Promise<void> {
  for (const cleanup of cleanups) {
    await Promise.resolve()
      .then(() => cleanup({ ...ctx, retries: 0 }))
      .catch((error: unknown) => ctx.logger.error({ err: error }, "cleanup handler failed"));
  }
}

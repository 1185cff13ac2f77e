// Signal handling of a running operator: SIGTERM and SIGINT stop it gracefully, once.
import type { Logger } from "pino";

/** SIGTERM and SIGINT (when `handle`) and the caller's signal, as one signal; `release` unhooks. */
export function trapSignals(handle: boolean, callers: AbortSignal | undefined, logger: Logger): { signal: AbortSignal; release: () => void } {
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    logger.info({ signal: sig }, "signal received: stopping gracefully");
    stop.abort(new Error(`received ${sig}`));
  };
  if (handle) {
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  }
  return {
    signal: callers ? AbortSignal.any([callers, stop.signal]) : stop.signal,
    release: () => {
      if (!handle) return;
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    },
  };
}

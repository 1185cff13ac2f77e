// Structured logging with pino: JSON lines on stdout (what log collectors expect in a
// cluster), one child logger per controller and per reconcile carrying the object reference.
import { pino, type Logger, type LevelWithSilent } from "pino";

/** Options of {@link createLogger}. */
export interface LoggingOptions {
  /** Default "info". */
  level?: LevelWithSilent;
  /** Where lines go. Default stdout. */
  destination?: NodeJS.WritableStream;
}

/** The operator's root logger: `{"level":30,"time":…,"operator":"name","msg":…}` per line. */
export function createLogger(operator: string, options: LoggingOptions = {}): Logger {
  const base = { level: options.level ?? "info", base: { operator }, formatters: { level: (label: string) => ({ level: label }) } };
  return options.destination ? pino(base, options.destination) : pino(base);
}

export type { Logger, LevelWithSilent };

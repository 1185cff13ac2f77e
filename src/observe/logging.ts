// Structured logging with pino: JSON lines on stdout (what log collectors expect in a
// cluster), one child logger per controller and per reconcile carrying the object reference.
import { pino, type Logger, type LevelWithSilent } from "pino";

/** Options of {@link createLogger}. */
export interface LoggingOptions {
  /** Default "info". */
  level?: LevelWithSilent;
  /** Where lines go. Default stdout. */
  destination?: NodeJS.WritableStream;
  /** "json" (default): one JSON object per line; "plain": human-readable lines for a terminal. */
  format?: "json" | "plain";
}

/** The operator's root logger: `{"level":"info","time":…,"operator":"name","msg":…}` per line. */
export function createLogger(operator: string, options: LoggingOptions = {}): Logger {
  const base = { level: options.level ?? "info", base: { operator }, formatters: { level: (label: string) => ({ level: label }) } };
  const out = options.destination ?? process.stdout;
  return pino(base, options.format === "plain" ? plain(out) : out);
}

/** Rewrites pino's JSON lines as `12:00:01 INFO  [controller ns/name] message key=value`. */
function plain(out: NodeJS.WritableStream): { write(line: string): void } {
  const hidden = new Set(["level", "time", "msg", "operator", "pid", "hostname", "controller", "object", "handler"]);
  return {
    write(line: string) {
      let r: Record<string, unknown>;
      try {
        r = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const time = new Date(Number(r.time)).toISOString().slice(11, 19);
      const where = [r.controller, r.object, r.handler].filter(Boolean).join(" ");
      const err = r.err as { message?: string } | undefined;
      const extras = Object.entries(r)
        .filter(([k]) => !hidden.has(k) && k !== "err")
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
      const text = `${time} ${String(r.level).toUpperCase().padEnd(5)} ${where ? `[${where}] ` : ""}${String(r.msg ?? "")}${extras.length ? ` ${extras.join(" ")}` : ""}${err?.message ? `: ${err.message}` : ""}`;
      out.write(`${text}\n`);
    },
  };
}

export type { Logger, LevelWithSilent };

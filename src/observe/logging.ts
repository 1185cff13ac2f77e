// Structured logging with pino: JSON lines on stdout (what log collectors expect in a
// cluster), one child logger per controller and per reconcile carrying the object reference.
import type { Logger, LevelWithSilent } from "pino";
import { pino } from "../core/lazy.js";
import { traceIds } from "../core/tracing.js";

/** Options of {@link createLogger}. */
export interface LoggingOptions {
  /** Default "info". */
  level?: LevelWithSilent;
  /** Where lines go. Default stdout. */
  destination?: NodeJS.WritableStream;
  /** "json" (default): one JSON object per line; "plain": human-readable lines for a terminal. */
  format?: "json" | "plain";
  /**
   * Plain format only: colour the level with ANSI codes. Default false; the CLI turns it on for a
   * terminal unless `NO_COLOR` is set (no-color.org).
   */
  colour?: boolean;
}

/** The operator's root logger: `{"level":"info","time":…,"operator":"name","msg":…}` per line. */
export function createLogger(operator: string, options: LoggingOptions = {}): Logger {
  // A line logged inside a span that records carries its ids (trace_id, span_id), to find the trace.
  const base = { level: options.level ?? "info", base: { operator }, formatters: { level: (label: string) => ({ level: label }) }, mixin: () => traceIds() ?? {} };
  const out = options.destination ?? process.stdout;
  return pino(base, options.format === "plain" ? plain(out, options.colour ?? false) : out);
}

/** ANSI foreground colours of the levels (the rest of a line stays as the terminal shows it). */
const LEVEL_COLOURS: Record<string, number> = { fatal: 35, error: 31, warn: 33, info: 32, debug: 90, trace: 90 };

/**
 * Rewrites pino's JSON lines as `12:00:01 INFO  [controller ns/name] message key=value`, an
 * error's stack (with its causes, as pino serializes them) indented on the lines below. Written
 * here rather than with pino-pretty: the line keeps the object's reference up front and drops
 * the fields every line has, and it runs in the process (no worker thread for a transport).
 */
function plain(out: NodeJS.WritableStream, colour: boolean): { write(line: string): void } {
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
      const err = r.err as { message?: string; stack?: string } | undefined;
      const extras = Object.entries(r)
        .filter(([k]) => !hidden.has(k) && k !== "err")
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
      const label = String(r.level).toUpperCase().padEnd(5);
      const code = LEVEL_COLOURS[String(r.level)];
      const level = colour && code ? `\u001b[${code}m${label}\u001b[39m` : label;
      const text = `${time} ${level} ${where ? `[${where}] ` : ""}${String(r.msg ?? "")}${extras.length ? ` ${extras.join(" ")}` : ""}${err?.message ? `: ${err.message}` : ""}`;
      // The stack below, without its first line (the message, already on the line above).
      const stack = (err?.stack ?? "").split("\n").slice(1).map((l) => l.trim()).filter(Boolean).map((l) => `    ${l}\n`).join("");
      out.write(`${text}\n${stack}`);
    },
  };
}

export type { Logger, LevelWithSilent };

// The operator's log lines: JSON with pino's field names, or plain lines for a terminal that keep
// an error's stack and colour the level only when asked (a TTY without NO_COLOR).
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { createLogger, type LoggingOptions } from "./logging.js";

/** The lines a logger wrote, once pino flushed them (it writes synchronously to a plain stream). */
function capture(options: Omit<LoggingOptions, "destination">): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
  return { lines, logger: createLogger("op", { ...options, destination }) };
}

function failure(): Error {
  const cause = new Error("connection refused");
  return new Error("the reconcile failed", { cause });
}

describe("log lines", () => {
  it("JSON keeps the field names, the error with its stack", () => {
    const { lines, logger } = capture({ format: "json" });
    logger.error({ err: failure(), object: "ns/a" }, "reconcile failed");
    const record = JSON.parse(lines[0] ?? "{}") as Record<string, unknown> & { err: { message: string; stack: string } };
    assert.equal(record.level, "error");
    assert.equal(record.operator, "op");
    assert.equal(record.object, "ns/a");
    assert.equal(record.msg, "reconcile failed");
    assert.equal(record.err.message, "the reconcile failed: connection refused"); // pino adds the causes' messages
    assert.match(record.err.stack, /at failure/);
  });

  it("plain: the line, then the error's stack indented below it (its cause's too); no colour unless asked", () => {
    const { lines, logger } = capture({ format: "plain" });
    logger.error({ err: failure(), object: "ns/a", controller: "c" }, "reconcile failed");
    logger.info("ready");
    assert.match(lines[0] ?? "", /^\d\d:\d\d:\d\d ERROR \[c ns\/a\] reconcile failed: the reconcile failed: connection refused$/);
    assert.match(lines[1] ?? "", /^ {4}at failure \(/, "the stack, indented");
    assert.ok(lines.some((l) => /^ {4}caused by: Error: connection refused$/.test(l)), `the cause: ${lines.join("\n")}`);
    assert.match(lines.at(-1) ?? "", /^\d\d:\d\d:\d\d INFO {2}ready$/);
    assert.ok(!lines.some((l) => l.includes("\u001b[")), "no escape codes");
  });

  it("plain with colour: the level coloured (red errors, yellow warnings), the rest as it is", () => {
    const { lines, logger } = capture({ format: "plain", colour: true });
    logger.error("broken");
    logger.warn("careful");
    logger.info("fine");
    const esc = "\u001b";
    assert.ok(lines[0]?.endsWith(`${esc}[31mERROR${esc}[39m broken`), JSON.stringify(lines[0]));
    assert.ok(lines[1]?.endsWith(`${esc}[33mWARN ${esc}[39m careful`), JSON.stringify(lines[1]));
    assert.ok(lines[2]?.endsWith(`${esc}[32mINFO ${esc}[39m fine`), JSON.stringify(lines[2]));
  });
});

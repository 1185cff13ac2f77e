// Registration-time checks of the Operator (no server): options a kopf user may carry over.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigMap } from "../core/builtins.js";
import { Operator } from "./operator.js";

describe("handler registration", () => {
  it("refuses kopf's 'retries' (counted differently) and names 'attempts'; attempts must be ≥ 1", () => {
    const op = new Operator({ name: "reg" });
    assert.throws(() => op.on.create(ConfigMap, async () => {}, { retries: 3 } as never), /'retries' is now 'attempts'.*retries=3 is attempts: 3/);
    assert.throws(() => op.on.create(ConfigMap, async () => {}, { attempts: 0 }), /'attempts' must be an integer ≥ 1/);
    op.on.create(ConfigMap, async () => {}, { attempts: 3 });
  });
});

describe("operator options", () => {
  // Refused when the Operator is made, not later: a concurrency of 0 would start no worker (every
  // object silently unhandled); a namespace that cannot exist would only show as a sync timeout.
  for (const [options, message] of [
    [{ concurrency: 0 }, /concurrency must be an integer ≥ 1 \(got 0\)/],
    [{ concurrency: 1.5 }, /concurrency must be an integer ≥ 1 \(got 1.5\)/],
    [{ cacheSyncTimeoutMs: -1 }, /cacheSyncTimeoutMs must be a finite number > 0 \(got -1\)/],
    [{ leaderElection: { retryPeriodMs: 0 } }, /retryPeriodMs must be a finite number > 0 \(got 0\)/],
    [{ namespaces: ["Bad_NS"] }, /namespace pattern "Bad_NS" .*lower-case letters, digits, '-', and the globs '\*' '\?', after an optional '!'/],
    [{ namespaces: [""] }, /namespace pattern ""/],
    [{ logLevel: "loud" }, /logLevel "loud" is not one of fatal, error, warn, info, debug, trace, silent/],
    [{ eventLevel: "loud" }, /eventLevel "loud" is not one of debug, info, warn, error, off/],
    [{ progressIn: "spec" }, /progressIn "spec" is not one of annotations, status/],
    [{ annotationPrefix: "No Prefix" }, /annotationPrefix "No Prefix" must be a lower-case DNS subdomain/],
  ] as [Record<string, unknown>, RegExp][]) {
    it(`refuses ${JSON.stringify(options)} when made, naming the option`, () => {
      assert.throws(() => new Operator({ name: "opts", ...options }), (e: unknown) => (e instanceof RangeError || e instanceof TypeError) && message.test(e.message));
    });
  }
  it("accepts what the docs allow", () => {
    new Operator({ name: "opts", concurrency: 1, namespaces: ["team-*", "!kube-*", "default", "a?c"], logLevel: "silent", eventLevel: "off", progressIn: "status", annotationPrefix: "ops.example.com" });
  });
  it("refuses a bad namespace pattern given to run() before connecting", async () => {
    await assert.rejects(new Operator({ name: "opts" }).run({ namespaces: ["UPPER"], handleSignals: false }), /namespace pattern "UPPER"/);
  });
});

describe("handler, timer and daemon options", () => {
  // A timer every 0 ms would spin; a negative backoff retries at once; refused when registered.
  const op = new Operator({ name: "opts" });
  for (const [what, register, message] of [
    ["a handler's timeoutMs 0", () => op.on.create(ConfigMap, async () => {}, { timeoutMs: 0 }), /timeoutMs must be a finite number > 0 \(got 0\)/],
    ["a handler's backoffMs NaN", () => op.on.update(ConfigMap, async () => {}, { backoffMs: Number.NaN }), /backoffMs must be a finite number ≥ 0 \(got NaN\)/],
    ["a timer's intervalMs 0", () => op.timer(ConfigMap, { intervalMs: 0 }, async () => {}), /intervalMs must be a finite number > 0 \(got 0\)/],
    ["a timer's missing intervalMs", () => op.timer(ConfigMap, {} as never, async () => {}), /intervalMs must be a finite number > 0 \(got undefined\)/],
    ["a timer's initialDelayMs -1", () => op.timer(ConfigMap, { intervalMs: 1_000, initialDelayMs: -1 }, async () => {}), /initialDelayMs must be a finite number ≥ 0 \(got -1\)/],
    ["a timer's idleMs Infinity", () => op.timer(ConfigMap, { intervalMs: 1_000, idleMs: Number.POSITIVE_INFINITY }, async () => {}), /idleMs must be a finite number ≥ 0/],
    ["a daemon's backoffMs -5", () => op.daemon(ConfigMap, async () => {}, { backoffMs: -5 }), /backoffMs must be a finite number ≥ 0 \(got -5\)/],
    ["a daemon's cancellationTimeoutMs NaN", () => op.daemon(ConfigMap, async () => {}, { cancellationTimeoutMs: Number.NaN }), /cancellationTimeoutMs must be a finite number ≥ 0 \(got NaN\)/],
  ] as [string, () => void, RegExp][]) {
    it(`refuses ${what} when registered, naming it`, () => {
      assert.throws(register, (e: unknown) => e instanceof RangeError && message.test(e.message));
    });
  }
});

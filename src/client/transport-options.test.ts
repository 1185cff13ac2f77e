// Bad numeric options of the client's transport are refused when the client is made, with an
// error naming the option, instead of misbehaving later (a negative retry count that never
// retries, a NaN delay that retries at once, a negative deadline that means none).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Client } from "./client.js";
import type { ClientOptions } from "./client.js";

const config = { server: "https://127.0.0.1:1", source: "test", namespace: "default", tls: { insecureSkipVerify: true }, auth: { type: "none" } } as const;

describe("transport options", () => {
  for (const [options, named] of [
    [{ retries: -1 }, /retries must be an integer ≥ 0 \(got -1\)/],
    [{ retries: 1.5 }, /retries must be an integer ≥ 0 \(got 1.5\)/],
    [{ retryDelayMs: Number.NaN }, /retryDelayMs must be a finite number ≥ 0 \(got NaN\)/],
    [{ maxRetryDelayMs: -1 }, /maxRetryDelayMs must be a finite number ≥ 0 \(got -1\)/],
    [{ timeoutMs: -5 }, /timeoutMs must be a finite number ≥ 0 \(0: no deadline\) \(got -5\)/],
    [{ timeoutMs: Number.POSITIVE_INFINITY }, /timeoutMs must be a finite number ≥ 0/],
  ] as [ClientOptions, RegExp][]) {
    it(`refuses ${JSON.stringify(options, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v))}`, () => {
      assert.throws(() => new Client(config, options), (e: unknown) => e instanceof RangeError && named.test(e.message));
    });
  }
  it("accepts zero where zero means something (no retries, no deadline, no delay)", () => {
    for (const options of [{ retries: 0 }, { timeoutMs: 0 }, { retryDelayMs: 0, maxRetryDelayMs: 0 }]) new Client(config, options);
  });
});

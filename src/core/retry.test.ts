import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ManualClock } from "./clock.js";
import { Backoff, backoffDelay, retrying } from "./retry.js";

describe("backoffDelay (the one rule)", () => {
  it("doubles from the base to the cap, and stays the same with factor 1", () => {
    const doubling = { baseMs: 1_000, maxMs: 60_000, factor: 2 };
    assert.deepEqual([0, 1, 2, 5, 6, 7].map((n) => backoffDelay(doubling, n)), [1_000, 2_000, 4_000, 32_000, 60_000, 60_000]);
    assert.deepEqual([0, 3, 100].map((n) => backoffDelay({ baseMs: 250, maxMs: 60_000, factor: 1 }, n)), [250, 250, 250]);
  });

  it("never overflows: a thousand failures give the cap, a base of 0 gives 0 (not NaN)", () => {
    assert.equal(backoffDelay({ baseMs: 5, maxMs: 1_000_000, factor: 2 }, 1_000), 1_000_000);
    assert.equal(backoffDelay({ baseMs: 0, maxMs: 60_000, factor: 2 }, 1_000), 0);
  });

  it("Backoff (the watcher's) follows it, with its jitter, and starts again after reset()", () => {
    const b = new Backoff({ initialMs: 800, maxMs: 30_000 }, () => 0.5); // no spread
    assert.deepEqual([b.next(), b.next(), b.next()], [800, 1_600, 3_200]);
    for (let i = 0; i < 10; i++) b.next();
    assert.equal(b.next(), 30_000);
    b.reset();
    assert.equal(b.next(), 800);
    const spread = new Backoff({ initialMs: 1_000, jitter: 0.5 }, () => 1);
    assert.equal(spread.next(), 1_250);
  });
});

describe("retrying (the one loop)", () => {
  it("sleeps on the clock it is given between attempts, and resolves with the value", async () => {
    const clock = new ManualClock();
    const calls: number[] = [];
    const retries: number[] = [];
    const done = retrying(
      async (n) => {
        calls.push(clock.now());
        if (n < 2) throw new Error(`fail ${n}`);
        return "ok";
      },
      { clock, signal: new AbortController().signal, delayOf: (_e, n) => 1_000 * 2 ** n, onRetry: (_e, n) => retries.push(n) },
    );
    await clock.advance(0);
    assert.deepEqual(calls, [0]);
    await clock.advance(999);
    assert.deepEqual(calls, [0], "retried before its delay");
    await clock.advance(1);
    await clock.advance(2_000);
    assert.deepEqual(await done, { done: true, value: "ok" });
    assert.deepEqual(calls, [0, 1_000, 3_000]);
    assert.deepEqual(retries, [0, 1]);
  });

  it("gives up with the error when delayOf says so, and stops during a wait when the signal aborts", async () => {
    const clock = new ManualClock();
    const boom = new Error("boom");
    assert.deepEqual(await retrying(async () => Promise.reject(boom), { clock, signal: new AbortController().signal, delayOf: () => undefined }), { done: false, error: boom });
    const stop = new AbortController();
    let attempts = 0;
    const stopped = retrying(async () => {
      attempts++;
      throw boom;
    }, { clock, signal: stop.signal, delayOf: () => 60_000 });
    await clock.advance(0);
    stop.abort();
    assert.deepEqual(await stopped, { done: false, stopped: true });
    assert.equal(attempts, 1);
  });
});

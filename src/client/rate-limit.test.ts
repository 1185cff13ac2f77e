import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ManualClock } from "../core/clock.js";
import { TokenBucket } from "./rate-limit.js";

describe("TokenBucket", () => {
  it("lets a burst through, then spaces calls at 1/qps", () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ qps: 5, burst: 10 }, clock);
    const waits = Array.from({ length: 13 }, () => bucket.reserve());
    assert.deepEqual(waits.slice(0, 10), Array(10).fill(0));
    assert.deepEqual(waits.slice(10).map(Math.round), [200, 400, 600]);
  });

  it("refills with time, never above the burst", async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ qps: 10, burst: 2 }, clock);
    bucket.reserve();
    bucket.reserve();
    assert.equal(Math.round(bucket.reserve()), 100);
    await clock.advance(10_000); // a long quiet period refills only up to the burst
    assert.equal(bucket.reserve(), 0);
    assert.equal(bucket.reserve(), 0);
    assert.ok(bucket.reserve() > 0);
  });

  it("acquire() waits on the clock, and gives up when aborted", async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ qps: 1, burst: 1 }, clock);
    await bucket.acquire();
    let done = false;
    const waiting = bucket.acquire().then(() => (done = true));
    await clock.advance(999);
    assert.equal(done, false);
    await clock.advance(1);
    await waiting;
    assert.equal(done, true);
    const controller = new AbortController();
    const aborted = bucket.acquire(controller.signal);
    controller.abort(new Error("stop"));
    await assert.rejects(aborted, /stop/);
  });

  it("rejects nonsense limits", () => {
    assert.throws(() => new TokenBucket({ qps: 0, burst: 1 }), /qps > 0/);
    assert.throws(() => new TokenBucket({ qps: 1, burst: 0 }), /burst >= 1/);
  });
});

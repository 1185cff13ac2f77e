import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_TIMER_MS, systemClock } from "./clock.js";
import { within } from "./async.js";

/** Resolves after `ms` of real time (used only to check that something did NOT happen). */
const realWait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("systemClock", () => {
  it("a sleep longer than setTimeout's 2^31-1 ms limit does not fire early (it used to fire after 1 ms)", async () => {
    let fired = false;
    const stop = new AbortController();
    const sleeping = systemClock.sleep(30 * 24 * 3600 * 1000, stop.signal).then(
      () => (fired = true),
      () => {},
    );
    await realWait(50);
    assert.equal(fired, false, "a 30-day sleep fired within 50 ms");
    stop.abort();
    await sleeping;
    assert.equal(fired, false);
  });

  it("an infinite sleep ends only through its signal", async () => {
    const stop = new AbortController();
    const sleeping = systemClock.sleep(Infinity, stop.signal);
    await realWait(20);
    stop.abort(new Error("stopped"));
    await assert.rejects(sleeping, /stopped/);
  });

  it("short sleeps still fire", async () => {
    const t0 = performance.now();
    await systemClock.sleep(5);
    assert.ok(performance.now() - t0 >= 4);
    assert.ok(MAX_TIMER_MS === 2 ** 31 - 1);
  });

  it("within() does not give up early on a delay beyond the timer limit", async () => {
    let settled: boolean | undefined;
    let finish!: () => void;
    const work = new Promise<void>((r) => (finish = r));
    const waiting = within(work, 2 ** 31 + 10).then((v) => (settled = v));
    await realWait(50);
    assert.equal(settled, undefined, "within() gave up after ~1 ms");
    finish();
    await waiting;
    assert.equal(settled, true);
  });
});

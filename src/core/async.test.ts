import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { collectGarbage, until } from "../../test/support.js";
import { deadline } from "./async.js";
import { ManualClock } from "./clock.js";

describe("deadline()", () => {
  it("aborts at its time even if the garbage collector runs before (AbortSignal.any with AbortSignal.timeout did not, on Node 20)", async () => {
    const parent = new AbortController();
    const d = deadline(150, [parent.signal]);
    const composite = AbortSignal.any([parent.signal, AbortSignal.timeout(150)]);
    await collectGarbage();
    await until("the deadline", () => d.signal.aborted, 3_000);
    assert.equal((d.signal.reason as DOMException).name, "TimeoutError");
    process.stdout.write(`# ${process.version}: AbortSignal.any + AbortSignal.timeout after a GC: ${composite.aborted ? "aborted" : "never aborted"}\n`);
  });

  it("aborts with a parent (its reason), and not at all once cleared", async () => {
    const parent = new AbortController();
    const d = deadline(10_000, [parent.signal]);
    parent.abort(new Error("stopping"));
    assert.equal((d.signal.reason as Error).message, "stopping");
    d.clear();

    const clock = new ManualClock();
    const cleared = deadline(100, [], clock);
    cleared.clear();
    await clock.advance(1_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(cleared.signal.aborted, false);
    const kept = deadline(100, [], clock);
    await clock.advance(100);
    await new Promise((r) => setImmediate(r));
    assert.equal(kept.signal.aborted, true);
  });
});

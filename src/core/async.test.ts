import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { collectGarbage, until } from "../../test/support.js";
import { deadline, pullEach, type BatchSink } from "./async.js";
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

describe("pullEach()", () => {
  it("yields every item in order, mapped; a producer ahead of a slow consumer waits once two batches wait", async () => {
    let pushed = 0;
    let mostAhead = 0;
    const got: number[] = [];
    const produce = async (push: BatchSink<number>) => {
      for (let i = 0; i < 20; i++) {
        pushed++;
        await push([2 * i, 2 * i + 1]);
      }
    };
    for await (const item of pullEach(produce, undefined, (n: number) => n * 10)) {
      got.push(item);
      const reading = Math.floor(item / 20); // the batch this item came from
      mostAhead = Math.max(mostAhead, pushed - 1 - reading); // batches made after it
      await new Promise((r) => setImmediate(r)); // a consumer slower than the producer
    }
    assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => i * 10));
    assert.equal(mostAhead, 2, "two batches waiting while one is read, no more");
  });

  it("throws the producer's failure after the items it pushed before it", async () => {
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const item of pullEach<number>(async (push) => {
          void push([1, 2]);
          throw new Error("the connection broke");
        })) seen.push(item);
      })(),
      /the connection broke/,
    );
    assert.deepEqual(seen, [1, 2]);
  });

  it("a consumer that stops early aborts the producer's signal and waits for it to end (a producer blocked on push is released)", async () => {
    let ended = false;
    let aborted = false;
    const events = pullEach<number>(async (push, signal) => {
      try {
        for (let i = 0; ; i++) {
          if (signal.aborted) return;
          await push([i]);
        }
      } finally {
        aborted = signal.aborted;
        ended = true;
      }
    });
    for await (const item of events) if (item === 3) break;
    assert.deepEqual([aborted, ended], [true, true]);
  });

  it("behaves as the async generator it replaced: lazy start, calls served in order, ends once, map's throw stops the producer", async () => {
    let starts = 0;
    const never = pullEach<number>(async () => {
      starts++;
    });
    assert.deepEqual(await never.return(undefined), { value: undefined, done: true });
    assert.equal(starts, 0, "a return() before the first next() must not start the producer");

    // Three calls made at once, before anything was pushed, get the items in order.
    let pushLater!: () => void;
    const inOrder = pullEach<number>(async (push) => {
      starts++;
      await new Promise<void>((resolve) => (pushLater = resolve));
      void push([1, 2]);
      void push([3]);
    });
    assert.equal(starts, 0, "made, not started");
    const calls = [inOrder.next(), inOrder.next(), inOrder.next(), inOrder.next()];
    await until("the producer started", () => pushLater !== undefined);
    pushLater();
    assert.deepEqual(
      (await Promise.all(calls)).map((r) => r.value),
      [1, 2, 3, undefined],
    );
    assert.deepEqual(await inOrder.next(), { value: undefined, done: true }, "done stays done");

    // A map that throws ends the iteration with its error and stops the producer.
    let stopped = false;
    const failing = pullEach<number, number>(
      async (push, signal) => {
        void push([1, 2, 3]);
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
        stopped = true;
      },
      undefined,
      (n) => {
        if (n === 2) throw new Error("bad item 2");
        return n;
      },
    );
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const n of failing) seen.push(n);
      })(),
      /bad item 2/,
    );
    assert.deepEqual([seen, stopped], [[1], true]);
    assert.deepEqual(await failing.next(), { value: undefined, done: true });
  });

  it("a return() while a call waits ends both with done, even when the stopped producer rejects", async () => {
    const events = pullEach<number>(
      (_push, signal) => new Promise<void>((_resolve, reject) => signal.addEventListener("abort", () => reject(new Error("aborted by the stop")))),
    );
    const waiting = events.next();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(await events.return(undefined), { value: undefined, done: true });
    assert.deepEqual(await waiting, { value: undefined, done: true });
    assert.deepEqual(await events.next(), { value: undefined, done: true });
  });

  it("a parent signal's abort reaches the producer, which ends the iteration", async () => {
    const parent = new AbortController();
    const seen: number[] = [];
    for await (const item of pullEach<number>(
      (push, signal) =>
        new Promise<void>((resolve) => {
          void push([1]);
          signal.addEventListener("abort", () => resolve());
        }),
      parent.signal,
    )) {
      seen.push(item);
      parent.abort();
    }
    assert.deepEqual(seen, [1]);
  });
});

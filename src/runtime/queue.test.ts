import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ManualClock } from "../core/clock.js";
import { LOW_PRIORITY, WorkQueue } from "./queue.js";

const noOverall = { overall: false as const };

describe("WorkQueue", () => {
  it("deduplicates keys that are waiting", async () => {
    const q = new WorkQueue({ clock: new ManualClock() });
    q.add("a");
    q.add("b");
    q.add("a");
    assert.equal(q.length, 2);
    assert.equal(await q.get(), "a");
    assert.equal(await q.get(), "b");
    assert.equal(q.length, 0);
  });

  it("never hands out a key being processed; re-queues it after done() if added meanwhile", async () => {
    const q = new WorkQueue({ clock: new ManualClock() });
    q.add("a");
    assert.equal(await q.get(), "a");
    q.add("a");
    q.add("a");
    assert.equal(q.length, 0, "not queued while processing");
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await Promise.resolve();
    assert.equal(second, undefined, "a waiting worker does not get it either");
    q.done("a");
    await Promise.resolve();
    assert.equal(second, "a", "processed again, once, after done()");
    q.done("a");
    assert.equal(q.length, 0);
  });

  it("keeps one key with one worker at a time across 100,000 random operations (holds and releases among them)", async () => {
    const q = new WorkQueue({ clock: new ManualClock() });
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    const active = new Set<string>();
    const lastAdd = new Map<string, number>(); // key → op number of its latest add
    const lastStart = new Map<string, number>(); // key → op number when a worker last took it
    let ops = 0;
    let violations = 0;
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const add = (key: string) => {
      lastAdd.set(key, ++ops);
      q.add(key);
    };
    const yieldRandomly = async () => {
      for (let i = Math.floor(random() * 4); i > 0; i--) await (random() < 0.5 ? Promise.resolve() : new Promise((r) => setImmediate(r)));
    };
    const workers = Array.from({ length: 8 }, async () => {
      for (;;) {
        const key = await q.get();
        if (key === undefined) return;
        ops++;
        if (active.has(key)) violations++;
        active.add(key);
        lastStart.set(key, ops);
        await yieldRandomly();
        if (random() < 0.3) add(keys[Math.floor(random() * keys.length)]!);
        active.delete(key);
        q.done(key);
      }
    });
    // Keys held (hold()) as by a reconcile of an earlier run: in `active` too, so a worker
    // taking one counts as a violation.
    const held = new Set<string>();
    while (ops < 100_000) {
      add(keys[Math.floor(random() * keys.length)]!);
      const r = random();
      if (r < 0.02) {
        const key = keys[Math.floor(random() * keys.length)]!;
        // Not held if a worker has it, even one whose get() has not returned yet.
        if (q.hold(key)) {
          held.add(key);
          active.add(key);
        }
      } else if (r < 0.04 && held.size > 0) {
        const key = held.values().next().value as string;
        held.delete(key);
        active.delete(key);
        q.release(key);
      }
      if (random() < 0.5) await yieldRandomly();
    }
    for (const key of held) {
      active.delete(key);
      q.release(key);
    }
    // Let the workers empty the queue, then stop.
    while (q.length > 0 || active.size > 0) await new Promise((r) => setImmediate(r));
    await q.shutDownWithDrain();
    await Promise.all(workers);
    assert.equal(violations, 0, "no key was processed by two workers at once");
    for (const [key, added] of lastAdd) {
      assert.ok((lastStart.get(key) ?? 0) > added, `${key}: its last add (op ${added}) was processed after it`);
    }
  });

  it("backs a key off exponentially from 5 ms, capped, until forget()", async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock, rateLimit: { ...noOverall, maxDelayMs: 100 } });
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      q.addRateLimited("k");
      const start = clock.now();
      while (q.length === 0) await clock.advance(1);
      delays.push(clock.now() - start);
      q.done((await q.get())!);
    }
    assert.deepEqual(delays, [5, 10, 20, 40, 80, 100, 100]);
    assert.equal(q.numRequeues("k"), 7);
    q.forget("k");
    assert.equal(q.numRequeues("k"), 0);
    q.addRateLimited("k");
    await clock.advance(4);
    assert.equal(q.length, 0);
    await clock.advance(1);
    assert.equal(q.length, 1, "back to the base delay");
  });

  it("limits all rate-limited adds together with a token bucket", async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock, rateLimit: { baseDelayMs: 1, overall: { qps: 10, burst: 2 } } });
    for (const key of ["a", "b", "c", "d"]) q.addRateLimited(key);
    await clock.advance(1);
    assert.equal(q.length, 2, "the burst passes");
    await clock.advance(99);
    assert.equal(q.length, 3, "then one per 100 ms");
    await clock.advance(100);
    assert.equal(q.length, 4);
  });

  it("addAfter: the earliest pending time wins, and a waiting key absorbs it", async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock });
    q.addAfter("a", 100);
    q.addAfter("a", 50);
    q.addAfter("a", 200);
    await clock.advance(49);
    assert.equal(q.length, 0);
    await clock.advance(1);
    assert.equal(q.length, 1);
    await clock.advance(200);
    assert.equal(q.length, 1, "the later delayed adds did not add it twice");
    q.addAfter("b", 0);
    assert.equal(q.length, 2, "zero delay adds at once");
  });

  it("shuts down: waiting workers get undefined, adds are ignored, drain waits for work in progress", async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock });
    q.add("busy");
    assert.equal(await q.get(), "busy");
    const waiting = q.get();
    q.addAfter("later", 10);
    let drained = false;
    const draining = q.shutDownWithDrain().then(() => (drained = true));
    assert.equal(await waiting, undefined);
    q.add("x");
    assert.equal(q.length, 0);
    await clock.advance(20);
    assert.equal(q.length, 0, "delayed adds are dropped");
    await Promise.resolve();
    assert.equal(drained, false, "still processing 'busy'");
    q.done("busy");
    await draining;
    assert.equal(drained, true);
    assert.equal(await q.get(), undefined);
  });

  it("reports adds, waits, work and retries to its hooks", async () => {
    const clock = new ManualClock();
    const seen: string[] = [];
    const q = new WorkQueue({
      clock,
      rateLimit: noOverall,
      hooks: {
        added: (k) => seen.push(`added ${k}`),
        started: (k, ms) => seen.push(`started ${k} after ${ms}`),
        finished: (k, ms) => seen.push(`finished ${k} in ${ms}`),
        retried: (k) => seen.push(`retried ${k}`),
      },
    });
    q.add("a");
    await clock.advance(7);
    await q.get();
    await clock.advance(3);
    q.done("a");
    q.addRateLimited("a");
    assert.deepEqual(seen, ["added a", "started a after 7", "finished a in 3", "retried a"]);
  });
});

describe("WorkQueue at its edges", () => {
  it("addAfter beyond the timer limit waits (system clock; it used to add after 1 ms)", async () => {
    const q = new WorkQueue();
    q.addAfter("far", 30 * 24 * 3600 * 1000);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(q.length, 0, "a 30-day addAfter was added within 50 ms");
    q.shutDown();
  });

  it("hands out no queued key once shut down", async () => {
    const q = new WorkQueue({ clock: new ManualClock() });
    for (let i = 0; i < 50; i++) q.add(`k${i}`);
    assert.equal(await q.get(), "k0");
    void q.shutDownWithDrain();
    assert.equal(await q.get(), undefined, "a queued key was handed out after shutdown");
    q.done("k0");
  });

  it("a forced shutDown() releases a pending shutDownWithDrain(), and two drains both return", async () => {
    const q = new WorkQueue({ clock: new ManualClock() });
    q.add("busy");
    await q.get();
    let first = false;
    let second = false;
    const d1 = q.shutDownWithDrain().then(() => (first = true));
    const d2 = q.shutDownWithDrain().then(() => (second = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(first || second, false, "still draining");
    q.shutDown();
    await new Promise((r) => setImmediate(r));
    assert.equal(first, true, "the first drain was released by the forced shutdown");
    assert.equal(second, true, "the second drain was released too");
    await Promise.all([d1, d2]);
  });

  it("two drains both return once the work is done", async () => {
    const q = new WorkQueue({ clock: new ManualClock() });
    q.add("busy");
    await q.get();
    const done: number[] = [];
    const d1 = q.shutDownWithDrain().then(() => done.push(1));
    const d2 = q.shutDownWithDrain().then(() => done.push(2));
    q.done("busy");
    await Promise.all([d1, d2]);
    assert.deepEqual(done.sort(), [1, 2]);
  });

  it("measures a key re-added while processing from its add, not from done()", async () => {
    const clock = new ManualClock();
    const waits: number[] = [];
    const q = new WorkQueue({ clock, hooks: { started: (_k, ms) => waits.push(ms) } });
    q.add("a");
    await q.get();
    await clock.advance(2);
    q.add("a"); // added while processing
    await clock.advance(10);
    q.done("a");
    await clock.advance(5);
    await q.get();
    assert.deepEqual(waits, [0, 15], "the second wait counts from the add (15 ms), not from done() (5 ms)");
  });

  it("counts every delayed add (requeueAfter too) as a retry, once", async () => {
    const clock = new ManualClock();
    let retries = 0;
    const q = new WorkQueue({ clock, rateLimit: noOverall, hooks: { retried: () => retries++ } });
    q.addAfter("a", 100);
    q.addRateLimited("b");
    assert.equal(retries, 2);
  });

  it("hold(key): no worker gets a held key, even one already queued; release() queues it if added meanwhile", async () => {
    const q = new WorkQueue({ clock: new ManualClock() });
    q.add("a");
    q.add("b");
    assert.equal(q.hold("a"), true); // queued already: taken out until released
    assert.equal(q.hold("c"), true);
    assert.equal(q.hold("c"), false, "held already");
    assert.equal(q.inFlight, 0, "held keys are not this queue's work in flight");
    assert.equal(q.length, 1);
    assert.equal(await q.get(), "b");
    q.add("c");
    q.done("a"); // a worker's done() does not end a hold
    assert.equal(q.length, 0, "a and c stay held");
    let next: string | undefined;
    void q.get().then((k) => (next = k));
    q.release("c");
    await Promise.resolve();
    assert.equal(next, "c", "c, added while held, goes to the waiting worker on release");
    q.release("a");
    assert.equal(q.length, 1, "a, queued before the hold, is queued again on release");
    assert.equal(await q.get(), "a");
    q.release("a"); // not held (a worker has it): no-op
    q.add("a");
    assert.equal(q.length, 0, "still a worker's: not queued");
    assert.equal(q.hold("a"), false, "a worker has it: not held");
    q.done("a");
    assert.equal(await q.get(), "a", "re-queued by done() as usual");
  });
});

describe("WorkQueue priorities (controller-runtime 0.23's priority queue)", () => {
  it("hands out higher priorities first, first in first out within one; the wait is reported with the priority", async () => {
    const waits: [string, number][] = [];
    const q = new WorkQueue({ clock: new ManualClock(), hooks: { started: (key, _ms, priority) => waits.push([key, priority]) } });
    for (const k of ["l1", "l2", "l3"]) q.add(k, LOW_PRIORITY);
    q.add("fresh1");
    q.add("urgent", 10);
    q.add("fresh2");
    assert.equal(q.length, 6);
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push((await q.get()) as string);
    assert.deepEqual(order, ["urgent", "fresh1", "fresh2", "l1", "l2", "l3"]);
    assert.deepEqual(waits, [["urgent", 10], ["fresh1", 0], ["fresh2", 0], ["l1", LOW_PRIORITY], ["l2", LOW_PRIORITY], ["l3", LOW_PRIORITY]]);
  });

  it("moves a waiting key up when added again at a higher priority, keeps its place at a lower one, and requeues after processing at the highest asked", async () => {
    const q = new WorkQueue({ clock: new ManualClock() });
    q.add("a", LOW_PRIORITY);
    q.add("b", LOW_PRIORITY);
    q.add("c");
    q.add("b"); // a watch event for b: ahead of a, behind c
    q.add("c", LOW_PRIORITY); // a relist of c: it keeps its place
    assert.equal(q.length, 3, "still three keys (no duplicates)");
    assert.deepEqual([await q.get(), await q.get(), await q.get()], ["c", "b", "a"]);
    assert.equal(q.length, 0);
    // Added twice while processing, the higher priority wins when it is queued again.
    q.add("c", LOW_PRIORITY);
    q.add("c");
    q.add("z", LOW_PRIORITY);
    q.done("c");
    assert.deepEqual([await q.get(), await q.get()], ["c", "z"]);
  });

  it("a held key leaves its lane and comes back when released", async () => {
    const q = new WorkQueue({ clock: new ManualClock() });
    q.add("a", LOW_PRIORITY);
    q.add("b", LOW_PRIORITY);
    assert.equal(q.hold("a"), true);
    assert.equal(q.length, 1);
    assert.equal(await q.get(), "b");
    q.release("a");
    assert.equal(await q.get(), "a");
  });
});


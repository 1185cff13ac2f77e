import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import type { Client } from "../client/client.js";
import { ManualClock } from "../core/clock.js";
import { PermanentError, TemporaryError } from "./errors.js";
import { runStartups } from "./activities.js";

const ctx = { client: {} as Client, logger: pino({ level: "silent" }) };

describe("startup handlers", () => {
  it("are retried on the injected clock: 1 s, 2 s for errors, a TemporaryError's own delay", async () => {
    const clock = new ManualClock();
    const seen: [number, number][] = [];
    const started = runStartups([{ fn: ({ retries }) => {
      seen.push([clock.now(), retries]);
      if (retries === 0 || retries === 1) throw new Error("not yet");
      if (retries === 2) throw new TemporaryError("wait", { delayMs: 10_000 });
    }, options: {} }], ctx, new AbortController().signal, clock);
    for (const ms of [0, 1_000, 2_000, 10_000]) await clock.advance(ms);
    assert.equal(await started, true);
    assert.deepEqual(seen, [[0, 0], [1_000, 1], [3_000, 2], [13_000, 3]]);
  });

  it("a PermanentError or the last of `attempts` rejects; a stop signal resolves false", async () => {
    const clock = new ManualClock();
    await assert.rejects(runStartups([{ fn: () => { throw new PermanentError("no"); }, options: {} }], ctx, new AbortController().signal, clock), /no/);
    let n = 0;
    const limited = runStartups([{ fn: () => { n++; throw new Error(`attempt ${n}`); }, options: { attempts: 2, backoffMs: 10 } }], ctx, new AbortController().signal, clock);
    const refused = assert.rejects(limited, /attempt 2/);
    await clock.advance(0);
    await clock.advance(10);
    await refused;
    const stop = new AbortController();
    const stopped = runStartups([{ fn: () => { throw new Error("never"); }, options: {} }], ctx, stop.signal, clock);
    await clock.advance(0);
    stop.abort();
    assert.equal(await stopped, false);
  });
});

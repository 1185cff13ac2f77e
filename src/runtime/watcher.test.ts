// The watcher's state machine, transition by transition (kube-rs's watcher tests in spirit):
// no server, no clock. Then the options it refuses.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Client } from "../client/client.js";
import { ConfigMap } from "../core/builtins.js";
import { ApiError, GoneError } from "../core/errors.js";
import type { KubeObject } from "../core/objects.js";
import { WatchHealth, transition, watch, type AttemptOutcome, type WatcherOptions, type WatchState } from "./watcher.js";

const list: WatchState = { phase: "list", consistent: false, full: false };
const stream: WatchState = { phase: "stream", consistent: false };
const watching: WatchState = { phase: "watch", rv: "10" };
const gone = new GoneError("Expired", "too old");
const closed = (o: Partial<Extract<AttemptOutcome, { kind: "closed" }>> = {}): AttemptOutcome => ({ kind: "closed", rv: "12", received: 3, ms: 60_000, inactive: false, listed: false, ...o });
const failed = (error: Error, o: Partial<Extract<AttemptOutcome, { kind: "failed" }>> = {}): AttemptOutcome => ({ kind: "failed", error, pagesRead: 0, listed: false, rv: "10", ...o });

describe("watcher transitions", () => {
  it("a completed paged list → watch from its resourceVersion; progress resets the backoff", () => {
    assert.deepEqual(transition(list, { kind: "listed", rv: "7" }, false), { state: { phase: "watch", rv: "7" }, backoff: false, progress: true });
  });

  it("a streaming list that completed and then closed → watch; one that closed before its end bookmark → stream again", () => {
    assert.deepEqual(transition(stream, closed({ listed: true }), "auto").state, { phase: "watch", rv: "12" });
    assert.deepEqual(transition(stream, closed({ listed: false }), "auto").state, stream);
  });

  it("a clean close of a watch resumes from the last resourceVersion at once", () => {
    const t = transition(watching, closed(), "auto");
    assert.deepEqual([t.state, t.backoff, t.report], [{ phase: "watch", rv: "12" }, false, undefined]);
  });

  it("a watch closed within a second with no event backs off and is reported (very short watch)", () => {
    const t = transition(watching, closed({ received: 0, ms: 5 }), "auto");
    assert.equal(t.backoff, true);
    assert.match(t.report?.message ?? "", /very short watch/);
  });

  it("inactivity: reconnect at once, reported", () => {
    const t = transition(watching, closed({ inactive: true, received: 0, ms: 180_000 }), "auto");
    assert.deepEqual([t.state, t.backoff], [{ phase: "watch", rv: "12" }, false]);
    assert.match(t.report?.message ?? "", /no event or bookmark/);
  });

  it("410 while watching → a consistent relist at once (streaming when allowed, else paged)", () => {
    assert.deepEqual(transition(watching, failed(gone), "auto").state, { phase: "stream", consistent: true });
    assert.deepEqual(transition(watching, failed(gone), false).state, { phase: "list", consistent: true, full: false });
    assert.equal(transition(watching, failed(gone), false).backoff, false);
  });

  it("410 in the middle of a paged list (expired continue token) → one unpaged list, after a backoff", () => {
    const t = transition(list, failed(gone, { pagesRead: 2 }), false);
    assert.deepEqual([t.state, t.backoff], [{ phase: "list", consistent: true, full: true }, true]);
  });

  it("a server that refuses streaming lists → paged lists from then on", () => {
    const t = transition(stream, failed(new ApiError("BadRequest", "sendInitialEvents not supported")), "auto");
    assert.deepEqual([t.state, t.noStreaming, t.backoff], [{ phase: "list", consistent: false, full: false }, true, false]);
    assert.equal(transition(stream, failed(new ApiError("BadRequest", "x")), true).noStreaming, undefined, "forced streaming stays");
  });

  it("a too-large resourceVersion → a consistent relist, after a backoff", () => {
    const tooLarge = new ApiError("Timeout", "Too large resource version", { code: 504, status: { details: { causes: [{ reason: "ResourceVersionTooLarge", message: "" }] } } });
    const t = transition(watching, failed(tooLarge), false);
    assert.deepEqual([t.state, t.backoff], [{ phase: "list", consistent: true, full: false }, true]);
  });

  it("any other failure → the watch resumes from the last resourceVersion seen, after a backoff; after a completed streaming list, the watch", () => {
    const t = transition(watching, failed(new ApiError("InternalError", "boom")), "auto");
    assert.deepEqual([t.state, t.backoff], [watching, true]);
    // Events up to 14 arrived before the connection broke: resuming from 10 would replay them
    // (the cache would go back in time, and deleted objects come back until their delete replays).
    assert.deepEqual(transition(watching, failed(new ApiError("Network", "the watch broke: other side closed"), { rv: "14" }), "auto").state, { phase: "watch", rv: "14" });
    assert.deepEqual(transition(stream, failed(new ApiError("InternalError", "boom"), { listed: true, rv: "15" }), "auto").state, { phase: "watch", rv: "15" });
  });
});

describe("watcher options", () => {
  const offline = () => new Client({ server: "https://127.0.0.1:1", source: "test", namespace: "default", tls: { insecureSkipVerify: true }, auth: { type: "none" } }, { rateLimit: false, retries: 0 });
  for (const [options, message] of [
    [{ pageSize: 0 }, /pageSize must be an integer ≥ 1 \(got 0\)/],
    [{ watchTimeoutSeconds: 1.5 }, /watchTimeoutSeconds must be an integer ≥ 1 \(got 1.5\)/],
    [{ inactivityTimeoutMs: -1 }, /inactivityTimeoutMs must be a finite number > 0 \(got -1\)/],
  ] as [WatcherOptions<KubeObject>, RegExp][]) {
    it(`refuses ${JSON.stringify(options)} at the first next(), naming the option`, async () => {
      const client = offline();
      try {
        await assert.rejects(watch(client.resource(ConfigMap), options).next(), (e: unknown) => e instanceof RangeError && message.test(e.message));
      } finally {
        await client.close();
      }
    });
  }
});

describe("watch health", () => {
  it("a run of failures starts at the first and lasts until the server says something again", () => {
    const health = new WatchHealth();
    health.heard(100);
    assert.deepEqual([health.lastHeardAt, health.failingSince, health.failures], [100, undefined, 0]);
    const refused = new ApiError("Forbidden", "watch refused");
    health.failed(refused, 200);
    health.failed(new ApiError("Forbidden", "again"), 900);
    assert.deepEqual([health.failingSince, health.failures, health.lastError?.message], [200, 2, "again"]);
    health.heard(1_000);
    assert.deepEqual([health.failingSince, health.lastHeardAt, health.lastError?.message], [undefined, 1_000, "again"], "over; the last error kept for the record");
  });
});

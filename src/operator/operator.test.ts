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
    [{ watchFailureToleranceMs: 0 }, /watchFailureToleranceMs must be a finite number > 0 \(got 0\)/],
    [{ watchInactivityTimeoutMs: -5 }, /watchInactivityTimeoutMs must be a finite number > 0 \(got -5\)/],
    [{ leaderElection: { retryPeriodMs: 0 } }, /retryPeriodMs must be a finite number > 0 \(got 0\)/],
    [{ namespaces: ["Bad_NS"] }, /namespace pattern "Bad_NS" .*lower-case letters, digits, '-', and the globs '\*' '\?', after an optional '!'/],
    [{ namespaces: [""] }, /namespace pattern ""/],
    [{ logLevel: "loud" }, /logLevel "loud" is not one of fatal, error, warn, info, debug, trace, silent/],
    [{ eventLevel: "loud" }, /eventLevel "loud" is not one of debug, info, warn, error, off/],
    [{ progressIn: "spec" }, /progressIn "spec" is not one of annotations, status/],
    [{ annotationPrefix: "No Prefix" }, /annotationPrefix "No Prefix" must be a lower-case DNS subdomain/],
    // Servers: a port Node cannot bind, a URL the API server refuses to call, would fail only at run().
    [{ probes: { port: 70_000 } }, /probes.port must be a port number 0–65535 \(got 70000\)/],
    [{ probes: { port: -1 } }, /probes.port must be a port number 0–65535 \(got -1\)/],
    [{ probes: { host: "" } }, /probes.host must be a non-empty host name or address/],
    [{ webhooks: { port: 8443.5 } }, /webhooks.port must be a port number 0–65535 \(got 8443.5\)/],
    [{ webhooks: { host: "" } }, /webhooks.host must be a non-empty host name or address/],
    [{ webhooks: { url: "http://op.ns.svc:443" } }, /webhooks.url "http:\/\/op.ns.svc:443" must be an https:\/\/ URL/],
    [{ webhooks: { url: "op.ns.svc" } }, /webhooks.url "op.ns.svc" must be an https:\/\/ URL/],
    [{ webhooks: { url: "https://op.ns.svc/base?x=1" } }, /webhooks.url .* must have no query or fragment/],
    [{ webhooks: { url: "https://user:pw@op.ns.svc" } }, /webhooks.url .* must have no user information/],
    [{ webhooks: { dnsNames: ["op.ns.svc", "Bad Name"] } }, /webhooks.dnsNames: "Bad Name" is not a DNS name/],
    [{ webhooks: { certificate: { certFile: "tls.crt" } } }, /webhooks.certificate needs certFile and keyFile/],
    // Sharding: a bucket count that cannot cut the hash space, a key the server cannot hash by.
    [{ sharding: { buckets: 0 } }, /sharding.buckets must be an integer from 1 to 65536, not 0/],
    [{ sharding: { buckets: 70_000 } }, /sharding.buckets must be an integer from 1 to 65536, not 70000/],
    [{ sharding: { buckets: 2.5 } }, /sharding.buckets must be an integer from 1 to 65536, not 2.5/],
    [{ sharding: { key: "name" } }, /sharding.key "name" is not one of uid, namespace/],
    [{ sharding: "yes" }, /sharding must be true, false or \{ buckets, key \}, not "yes"/],
  ] as [Record<string, unknown>, RegExp][]) {
    it(`refuses ${JSON.stringify(options)} when made, naming the option`, () => {
      assert.throws(() => new Operator({ name: "opts", ...options }), (e: unknown) => (e instanceof RangeError || e instanceof TypeError) && message.test(e.message));
    });
  }
  it("accepts what the docs allow", () => {
    new Operator({ name: "opts", concurrency: 1, namespaces: ["team-*", "!kube-*", "default", "a?c"], logLevel: "silent", eventLevel: "off", progressIn: "status", annotationPrefix: "ops.example.com" });
    new Operator({ name: "opts", probes: { port: 0, host: "127.0.0.1" }, webhooks: { port: 9443, url: "https://op.ns.svc:443/hooks", dnsNames: ["op.ns.svc", "*.ns.svc"], certificate: { certFile: "tls.crt", keyFile: "tls.key" } } });
    new Operator({ name: "opts", probes: false, webhooks: { port: 65_535, url: "https://[::1]:9443" } });
    new Operator({ name: "opts", sharding: true });
    new Operator({ name: "opts", sharding: { buckets: 1 } });
    new Operator({ name: "opts", sharding: { buckets: 65_536, key: "namespace" }, leaderElection: false });
  });
  it("refuses bad server options given to run() before connecting", async () => {
    await assert.rejects(new Operator({ name: "opts" }).run({ probes: { port: 1e6 }, handleSignals: false }), /probes.port must be a port number 0–65535/);
    await assert.rejects(new Operator({ name: "opts" }).run({ extraProbes: { port: Number.NaN }, handleSignals: false }), /extraProbes.port must be a port number 0–65535/);
    await assert.rejects(new Operator({ name: "opts" }).run({ webhooks: { url: "ftp://x" }, handleSignals: false }), /webhooks.url "ftp:\/\/x" must be an https:\/\/ URL/);
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
    // Admission webhooks: what the API server would refuse when the operator registers them.
    ["a webhook's timeoutSeconds 2.5", () => op.on.validate(ConfigMap, () => {}, { timeoutSeconds: 2.5 }), /timeoutSeconds must be an integer 1–30 \(the API server's bounds\), not 2.5/],
    ["a webhook's failurePolicy", () => op.on.validate(ConfigMap, () => {}, { failurePolicy: "Deny" as never }), /failurePolicy "Deny" is not one of Fail, Ignore/],
    ["a webhook's sideEffects", () => op.on.mutate(ConfigMap, () => {}, { sideEffects: "Some" as never }), /sideEffects "Some" is not one of None, NoneOnDryRun/],
    ["a webhook's reinvocationPolicy", () => op.on.mutate(ConfigMap, () => {}, { reinvocationPolicy: "Always" as never }), /reinvocationPolicy "Always" is not one of Never, IfNeeded/],
    ["a webhook's operations", () => op.on.validate(ConfigMap, () => {}, { operations: ["CREATE", "PATCH" as never] }), /operations: "PATCH" is not one of CREATE, UPDATE, DELETE, CONNECT/],
    ["a webhook's empty operations", () => op.on.validate(ConfigMap, () => {}, { operations: [] }), /operations must name at least one operation/],
  ] as [string, () => void, RegExp][]) {
    it(`refuses ${what} when registered, naming it`, () => {
      assert.throws(register, (e: unknown) => (e instanceof RangeError || e instanceof TypeError) && message.test(e.message));
    });
  }
});

describe("a sharded operator's access", () => {
  it("adds list and delete on Leases (the members' Leases; its own deleted on leaving), with or without leader election", () => {
    for (const leaderElection of [undefined, false] as const) {
      const op = new Operator({ name: "sharded", sharding: true, ...(leaderElection === false ? { leaderElection } : {}) });
      op.on.create(ConfigMap, async () => {});
      const leases = op.access("ops").filter((n) => n.resource === "leases");
      assert.deepEqual(leases.flatMap((n) => n.verbs).sort(), ["create", "delete", "get", "list", "update"], JSON.stringify(leases));
      assert.ok(leases.every((n) => n.namespace === "ops"));
    }
    const plain = new Operator({ name: "plain" });
    plain.on.create(ConfigMap, async () => {});
    assert.deepEqual(plain.access("ops").filter((n) => n.resource === "leases").flatMap((n) => n.verbs).sort(), ["create", "get", "update"]);
  });
});

// The reconcile loop against the real API server: owned children brought back, retries with
// growing delays, terminal errors not retried, one worker per key under a burst of updates.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client, ConfigMap, Namespace, NotFoundError } from "../src/entries/index.js";
import { Action, TerminalError, predicates } from "../src/entries/index.js";
import { controller, type Controller } from "../src/entries/runtime.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";
import { pino } from "pino";

const quiet = pino({ level: "silent" });

let client: Client;
const running: Controller<never>[] = [];

before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
});
after(async () => {
  for (const c of running) await c.stop();
  await client?.close();
  await releaseSharedCluster();
});

async function namespace(): Promise<string> {
  const ns = uniqueName("ctl");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  return ns;
}

describe("controller", () => {
  it("keeps an owned child in place: a deleted child comes back", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const cms = client.resource(ConfigMap).namespace(ns);
    const c = controller(client, ConfigMap).withOptions({ logger: quiet })
      .withOptions({ scope: { namespace: ns, labelSelector: "role=parent" } })
      .owns(ConfigMap, { namespace: ns, labelSelector: "role=child" })
      .reconcile(async (ref, { object }) => {
        if (!object) return;
        await cms.apply(
          {
            metadata: {
              name: `${ref.name}-child`,
              labels: { role: "child" },
              ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: ref.name, uid: object.metadata!.uid!, controller: true }],
            },
            data: { from: ref.name },
          },
          { fieldManager: "test-controller", force: true },
        );
      });
    running.push(c as never);
    await c.start(AbortSignal.timeout(30_000));
    await cms.create({ metadata: { name: "p", labels: { role: "parent" } } });
    await eventually("the child to be created", async () => (await cms.get("p-child")).data?.from === "p");
    const first = (await cms.get("p-child")).metadata!.uid;
    await cms.delete("p-child");
    await eventually("the child to come back", async () => {
      const child = await cms.get("p-child").catch((e: unknown) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
      return child !== undefined && child.metadata!.uid !== first;
    });
  });

  it("retries a failing reconcile with growing delays; a TerminalError is not retried", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const cms = client.resource(ConfigMap).namespace(ns);
    const attempts = new Map<string, number[]>();
    const errors: { name: string; retry: boolean }[] = [];
    const c = controller(client, ConfigMap).withOptions({ logger: quiet })
      .withOptions({ scope: { namespace: ns }, onError: (ref, _e, retry) => errors.push({ name: ref.name, retry }) })
      .reconcile(async (ref) => {
        const times = attempts.get(ref.name) ?? [];
        times.push(performance.now());
        attempts.set(ref.name, times);
        if (ref.name === "flaky" && times.length < 6) throw new Error("not yet");
        if (ref.name === "doomed") throw new TerminalError("cannot ever work");
        return Action.awaitChange();
      });
    running.push(c as never);
    await c.start(AbortSignal.timeout(30_000));
    await cms.create({ metadata: { name: "doomed" } });
    await cms.create({ metadata: { name: "flaky" } });
    await eventually("the flaky object to succeed on its 6th attempt", async () => attempts.get("flaky")?.length === 6);
    const t = attempts.get("flaky")!;
    const gaps = t.slice(1).map((x, i) => x - t[i]!);
    // Per-key backoff 5, 10, 20, 40, 80 ms: each gap at least its delay, and they grow.
    gaps.forEach((gap, i) => assert.ok(gap >= 5 * 2 ** i - 1, `gap ${i} = ${gap.toFixed(1)} ms ≥ ${5 * 2 ** i} ms`));
    assert.ok(gaps[4]! > gaps[0]!, `delays grow: ${gaps.map((g) => g.toFixed(0)).join(", ")}`);
    assert.equal(attempts.get("doomed")?.length, 1, "the terminal error was not retried");
    assert.deepEqual(errors.filter((e) => e.name === "doomed"), [{ name: "doomed", retry: false }]);
    assert.equal(c.queue.numRequeues("flaky"), 0, "success forgets the failures");
  });

  it("never reconciles one object in two workers at once (concurrency 8, 5,000 updates)", { timeout: 120_000 }, async () => {
    const ns = await namespace();
    const cms = client.resource(ConfigMap).namespace(ns);
    const names = Array.from({ length: 20 }, (_, i) => `o${i}`);
    await Promise.all(names.map((name) => cms.create({ metadata: { name }, data: { n: "0" } })));
    const active = new Set<string>();
    let overlaps = 0;
    let peak = 0;
    const lastSeen = new Map<string, string>();
    const c = controller(client, ConfigMap).withOptions({ logger: quiet })
      .concurrency(8)
      .withOptions({ scope: { namespace: ns } })
      .reconcile(async (ref, { object }) => {
        if (active.has(ref.name)) overlaps++;
        active.add(ref.name);
        peak = Math.max(peak, active.size);
        await new Promise((r) => setTimeout(r, Math.random() * 5));
        lastSeen.set(ref.name, object?.data?.n ?? "");
        active.delete(ref.name);
      });
    running.push(c as never);
    await c.start(AbortSignal.timeout(30_000));
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < 5_000) {
          const i = next++;
          await cms.patch(names[i % names.length]!, { data: { n: String(i) } }, { type: "merge" });
        }
      }),
    );
    // Level-based: after the burst every object is reconciled at its final state.
    const final = new Map((await cms.list()).items.map((o) => [o.metadata!.name!, o.data?.n]));
    await eventually("every object reconciled at its final state", async () => names.every((n) => lastSeen.get(n) === final.get(n)));
    assert.equal(overlaps, 0);
    assert.ok(peak > 1, `reconciles ran in parallel (peak ${peak})`);
  });

  it("predicates filter events: labelsChanged ignores data updates", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const cms = client.resource(ConfigMap).namespace(ns);
    const seen: string[] = [];
    const c = controller(client, ConfigMap)
      .withOptions({ logger: quiet, scope: { namespace: ns } })
      .withPredicates(predicates.labelsChanged)
      .reconcile(async (ref, { object }) => {
        seen.push(`${ref.name}:${object?.metadata?.labels?.tier ?? "-"}:${object?.data?.v ?? "-"}`);
      });
    running.push(c as never);
    await c.start(AbortSignal.timeout(30_000));
    await cms.create({ metadata: { name: "p", labels: { tier: "a" } }, data: { v: "1" } });
    await eventually("created", async () => seen.includes("p:a:1"));
    await cms.patch("p", { data: { v: "2" } }, { type: "merge" });
    await cms.patch("p", { metadata: { labels: { tier: "b" } } }, { type: "merge" });
    await eventually("label change reconciled", async () => seen.includes("p:b:2"));
    assert.ok(!seen.includes("p:a:2"), `the data-only update was filtered out (saw ${seen.join(", ")})`);
  });
});

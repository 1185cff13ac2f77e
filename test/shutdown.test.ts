// Graceful shutdown during a burst (issue 13's scenario): SIGTERM while handlers run; the process
// exits in time, work in flight finishes and is recorded, and a restarted operator completes the
// rest without running any finished handler again.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Client, ConfigMap, Namespace } from "../src/entries/index.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";
import { spawnTs } from "./support.js";

const fixture = fileURLToPath(new URL("./fixtures/burst-operator.ts", import.meta.url));
let kubeconfig: string;
let client: Client;
const kills: (() => void)[] = [];
before(async () => {
  kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
});
after(async () => {
  for (const kill of kills) kill();
  await client?.close();
  await releaseSharedCluster();
});

function operator(ns: string) {
  const spawned = spawnTs(fixture, [kubeconfig, ns]);
  const child = spawned.process;
  kills.push(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"));
  return { ...spawned, child };
}

describe("graceful shutdown during a burst", () => {
  it("SIGTERM mid-burst: exits in time, in-flight handlers finish and are recorded, none runs twice after a restart", { timeout: 120_000 }, async () => {
    const ns = uniqueName("burst");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const cms = client.resource(ConfigMap).namespace(ns);
    const first = operator(ns);
    await eventually("the first operator running", async () => first.lines.includes("STARTED"), { timeoutMs: 60_000 });
    const N = 60;
    await Promise.all(Array.from({ length: N }, (_, i) => cms.create({ metadata: { name: `b${i}` } })));
    await eventually("handlers in flight", async () => first.lines.filter((l) => l.startsWith("START")).length >= 10, { intervalMs: 20 });
    const termAt = Date.now();
    first.child.kill("SIGTERM");
    assert.equal(await first.exited, 0, `exits cleanly:\n${first.stderr()}`);
    const tookMs = Date.now() - termAt;
    assert.ok(tookMs < 10_000 + 5_000, `stopped ${tookMs} ms after SIGTERM (grace 10 s)`);
    assert.ok(first.lines.includes("STOPPED"));
    const startedFirst = first.lines.filter((l) => l.startsWith("START ")).map((l) => l.slice(6));
    const endedFirst = first.lines.filter((l) => l.startsWith("END ")).map((l) => l.slice(4));
    assert.deepEqual([...startedFirst].sort(), [...endedFirst].sort(), "every handler that started before the stop finished");
    // Nothing is taken from the queue after the signal: starts printed after it can only be the
    // keys the 8 workers already held (d608766 went on to start every queued object).
    const afterSignal = first.lines.slice(first.lines.indexOf("SIGTERM")).filter((l) => l.startsWith("START ")).length;
    assert.ok(afterSignal <= 8, `${afterSignal} handlers started after SIGTERM (concurrency 8)`);

    const second = operator(ns);
    try {
      await eventually(
        "every object handled",
        async () => (await cms.list()).items.filter((c) => c.metadata?.name?.startsWith("b") && c.metadata?.annotations?.["burst.kubeloop.dev/last-handled"]).length === N,
        { timeoutMs: 60_000 },
      );
    } finally {
      second.child.kill("SIGTERM");
      await second.exited;
    }
    const ends = [...endedFirst, ...second.lines.filter((l) => l.startsWith("END ")).map((l) => l.slice(4))];
    const twice = ends.filter((name, i) => ends.indexOf(name) !== i);
    assert.deepEqual(twice, [], "no handler ran to the end twice for one object");
    assert.equal(new Set(ends).size, N, "every object's handler ran to the end once");
    process.stdout.write(`# SIGTERM mid-burst: ${afterSignal} starts after the signal, stopped in ${tookMs} ms; ${endedFirst.length} finished before, ${N - endedFirst.length} after the restart, 0 twice\n`);
  });
});

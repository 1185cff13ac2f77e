// The dev override with two real processes (issue 14 item 4): an operator "in the cluster"
// (kubeloop run, leader election on) and a developer's `kubeloop run --dev` of the same operator.
// While the dev run lives, only it acts: the other pauses and says so in its log and readiness;
// it acts again when the dev run stops (at once) or is killed (after the dev Lease expires).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { pino } from "pino";
import * as YAML from "yaml";
import { Client, ConfigMap, Deployment, Namespace, ValidatingWebhookConfiguration } from "../src/entries/index.js";
import { Manager } from "../src/entries/runtime.js";
import { FaultProxy } from "../src/entries/testing.js";
import { DevOverride } from "../src/controller/dev-pause.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";
import { spawnKubeloop, type CliRun } from "./support.js";

const root = fileURLToPath(new URL("..", import.meta.url));

const scratch = join(root, "test", "fixtures", `dev-${process.pid}`);
let client: Client;
let kubeconfig: string;
const children: { kill: (s: NodeJS.Signals) => void }[] = [];

before(async () => {
  kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  mkdirSync(scratch, { recursive: true });
});
after(async () => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
  await client?.close();
  await releaseSharedCluster();
});

function kubeloop(args: string[], who: string): CliRun {
  const handle = spawnKubeloop(args, { ...process.env, WHO: who });
  children.push(handle);
  return handle;
}

describe("kubeloop run --dev", () => {
  it("pauses the operator running in the cluster, which resumes when the dev run stops or dies", { timeout: 180_000 }, async () => {
    const ns = uniqueName("devo");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const file = join(scratch, "operator.ts");
    writeFileSync(
      file,
      `import { ConfigMap, Operator } from "../../../src/entries/index.js";
export const op = new Operator({ name: "devo", namespaces: ["${ns}"], leaderElection: { namespace: "${ns}", leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 } });
op.on.create(ConfigMap, async ({ patch }) => void (patch.metadata.annotations["handled-by"] = process.env.WHO ?? "?"));
`,
    );
    const cms = client.resource(ConfigMap).namespace(ns);
    const handledBy = async (name: string) => (await cms.get(name)).metadata?.annotations?.["handled-by"];
    const create = async (name: string) => cms.create({ metadata: { name } });

    const cluster = kubeloop(["run", file, "--kubeconfig", kubeconfig, "--health-bind", "127.0.0.1:0", "--metrics-bind", "0", "--log-format", "json"], "cluster");
    await create("c1");
    await eventually("the cluster's operator acts", async () => (await handledBy("c1")) === "cluster", { timeoutMs: 60_000 });
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(cluster.out())?.[1];
    assert.ok(url, "its health server");

    // A dev run: the cluster's operator pauses, and says so.
    const dev = kubeloop(["run", file, "--kubeconfig", kubeconfig, "--dev", "--dev-lease-ms", "3000", "--metrics-bind", "0", "--health-bind", "0", "--log-format", "json"], "dev");
    await eventually("the dev run sees the pause acknowledged", async () => /dev override: .* paused/.test(dev.out()), { timeoutMs: 60_000 });
    assert.match(cluster.out(), /paused by a dev run/);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /paused by the dev run dev:/);
    for (let i = 0; i < 5; i++) await create(`d${i}`);
    for (let i = 0; i < 5; i++) await eventually(`d${i} handled`, async () => (await handledBy(`d${i}`)) !== undefined);
    for (let i = 0; i < 5; i++) assert.equal(await handledBy(`d${i}`), "dev", `d${i} handled by the dev run only`);

    // The dev run stops: the cluster's operator acts again at once.
    dev.kill("SIGTERM");
    assert.equal(await dev.exited, 0, dev.out());
    await eventually("the cluster's operator resumes", async () => /the dev run ended: acting again/.test(cluster.out()), { timeoutMs: 20_000 });
    await create("c2");
    await eventually("c2 handled by the cluster's operator", async () => (await handledBy("c2")) === "cluster");
    assert.equal((await fetch(`${url}/readyz`)).status, 200);

    // A dev run that dies: the cluster's operator resumes once the dev Lease expires.
    const killed = kubeloop(["run", file, "--kubeconfig", kubeconfig, "--dev", "--dev-lease-ms", "3000", "--metrics-bind", "0", "--health-bind", "0", "--log-format", "json"], "dev2");
    await eventually("paused again", async () => /dev override: .* paused/.test(killed.out()), { timeoutMs: 60_000 });
    killed.kill("SIGKILL");
    await killed.exited;
    const diedAt = Date.now();
    await create("c3");
    await eventually("c3 handled by the cluster's operator after the dev Lease expired", async () => (await handledBy("c3")) === "cluster", { timeoutMs: 30_000 });
    assert.ok(Date.now() - diedAt < 15_000, `resumed ${Date.now() - diedAt} ms after the dev run died (lease 3 s)`);

    cluster.kill("SIGTERM");
    assert.equal(await cluster.exited, 0, cluster.out().slice(-2000));
  });
});

describe("kubeloop dev --kubeconfig", () => {
  it("pauses the operator running in the cluster, across the restarts of its own operator, until it stops", { timeout: 180_000 }, async () => {
    const ns = uniqueName("devk");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    // A directory of its own: `kubeloop dev` restarts its operator when a file next to it changes.
    const dir = join(scratch, "dev-cli");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "operator.ts");
    const source = (comment: string) => `// ${comment}
import { ConfigMap, Operator } from "../../../../src/entries/index.js";
export const op = new Operator({ name: "devk", namespaces: ["${ns}"], leaderElection: { namespace: "${ns}", leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 } });
op.on.create(ConfigMap, async ({ patch }) => void (patch.metadata.annotations["handled-by"] = process.env.WHO ?? "?"));
`;
    writeFileSync(file, source("first"));
    const cms = client.resource(ConfigMap).namespace(ns);
    const handledBy = async (name: string) => (await cms.get(name)).metadata?.annotations?.["handled-by"];
    const create = async (name: string) => cms.create({ metadata: { name } });
    const synced = (run: CliRun) => run.out().split("caches synced").length - 1;

    const cluster = kubeloop(["run", file, "--kubeconfig", kubeconfig, "--health-bind", "0", "--metrics-bind", "0", "--log-format", "json"], "cluster");
    try {
      await create("c1");
      await eventually("the cluster's operator acts", async () => (await handledBy("c1")) === "cluster", { timeoutMs: 60_000 });

      const dev = kubeloop(["dev", file, "--kubeconfig", kubeconfig, "--", "--metrics-bind", "0", "--health-bind", "0", "--log-format", "json"], "dev");
      try {
        await eventually("the dev loop sees the pause acknowledged and runs its operator", async () => /kubeloop dev: .* paused/.test(dev.out()) && synced(dev) >= 1, { timeoutMs: 60_000 });
        assert.match(cluster.out(), /paused by a dev run/);
        // A change restarts the dev loop's operator; the cluster's stays paused in between.
        writeFileSync(file, source("second"));
        await eventually("the dev loop restarts its operator", async () => dev.out().includes("operator.ts changed: restarting the operator"), { timeoutMs: 30_000 });
        for (let i = 0; i < 3; i++) await create(`d${i}`);
        await eventually("the restarted operator synced", async () => synced(dev) >= 2, { timeoutMs: 60_000 });
        for (let i = 0; i < 3; i++) await eventually(`d${i} handled`, async () => (await handledBy(`d${i}`)) !== undefined);
        for (let i = 0; i < 3; i++) assert.equal(await handledBy(`d${i}`), "dev", `d${i}, made while the dev loop restarted, handled by the dev loop only`);
      } finally {
        dev.kill("SIGTERM");
        assert.equal(await dev.exited, 0, dev.out().slice(-2000));
      }
      await eventually("the cluster's operator resumes", async () => /the dev run ended: acting again/.test(cluster.out()), { timeoutMs: 20_000 });
      await create("c2");
      await eventually("c2 handled by the cluster's operator", async () => (await handledBy("c2")) === "cluster");
    } finally {
      cluster.kill("SIGTERM");
      assert.equal(await cluster.exited, 0, cluster.out().slice(-2000));
    }
  });
});

describe("kubeloop dev --kubeconfig, SIGKILLed", () => {
  it("its operator child stops acting at once, before the deployed operator's pause expires (fencing record from both)", { timeout: 180_000 }, async () => {
    const ns = uniqueName("devkill");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const dir = join(scratch, "dev-kill");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "operator.ts");
    const journal = join(scratch, `journal-${ns}`);
    writeFileSync(journal, "");
    // Every tick of a timer appends who acted, its pid and when: the fencing record.
    writeFileSync(
      file,
      `import { appendFileSync } from "node:fs";
import { ConfigMap, Operator } from "../../../../src/entries/index.js";
export const op = new Operator({ name: "devkill", namespaces: ["${ns}"], leaderElection: { namespace: "${ns}", leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 } });
op.timer(ConfigMap, { intervalMs: 200 }, async () => appendFileSync(${JSON.stringify(journal)}, \`\${process.env.WHO} \${process.pid} \${Date.now()}\n\`));
`,
    );
    const ticks = () =>
      readFileSync(journal, "utf8").split("\n").filter(Boolean).map((line) => {
        const [who, pid, at] = line.split(" ");
        return { who: who as string, pid: Number(pid), at: Number(at) };
      });
    await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "t" } });
    const cluster = kubeloop(["run", file, "--kubeconfig", kubeconfig, "--health-bind", "0", "--metrics-bind", "0", "--log-format", "json"], "cluster");
    let childPid: number | undefined;
    try {
      await eventually("the cluster's operator ticks", async () => ticks().some((t) => t.who === "cluster"), { timeoutMs: 60_000 });
      const dev = kubeloop(["dev", file, "--kubeconfig", kubeconfig, "--", "--metrics-bind", "0", "--health-bind", "0", "--log-format", "json"], "dev");
      await eventually("the dev loop's operator ticks", async () => ticks().some((t) => t.who === "dev"), { timeoutMs: 60_000 });
      childPid = ticks().find((t) => t.who === "dev")?.pid;
      dev.kill("SIGKILL");
      await dev.exited;
      const killedAt = Date.now();
      await eventually("the dev loop's operator child is gone", async () => !alive(childPid as number), { timeoutMs: 30_000, intervalMs: 50 });
      const goneAfter = Date.now() - killedAt;
      await eventually("the cluster's operator acts again once the dev Lease expired", async () => ticks().some((t) => t.who === "cluster" && t.at > killedAt), { timeoutMs: 60_000 }).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${cluster.out().slice(-3000)}`);
      });
      const all = ticks();
      const lastDev = Math.max(...all.filter((t) => t.who === "dev").map((t) => t.at));
      const resumed = Math.min(...all.filter((t) => t.who === "cluster" && t.at > killedAt).map((t) => t.at));
      assert.ok(lastDev < resumed, `the dev child acted at ${lastDev - killedAt} ms after the kill, the cluster's operator resumed at ${resumed - killedAt} ms: two actors`);
      assert.ok(lastDev - killedAt < 5_000, `the dev child acted ${lastDev - killedAt} ms after its parent was killed`);
      process.stdout.write(`# dev child gone ${goneAfter} ms after its parent's SIGKILL (last act at ${lastDev - killedAt} ms); the cluster's operator resumed at ${resumed - killedAt} ms\n`);
    } finally {
      if (childPid !== undefined && alive(childPid)) process.kill(childPid, "SIGKILL");
      cluster.kill("SIGTERM");
      assert.equal(await cluster.exited, 0, cluster.out().slice(-2000));
    }
  });
});

/** Whether a process of this id runs (and is not a zombie). */
function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("a paused operator whose reads of the dev Lease fail", () => {
  it("stays paused through a 5 s connection cut, and acts again only once a read shows the dev Lease released", { timeout: 120_000 }, async () => {
    const ns = uniqueName("devcut");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const cluster = await sharedCluster();
    const proxy = await FaultProxy.start(cluster.server);
    const dir = mkdtempSync(join(tmpdir(), "kubeloop-devcut-"));
    const cut = await Client.load({ path: proxy.rewriteKubeconfig(cluster.kubeconfigPath, join(dir, "k")), rateLimit: false, timeoutMs: 2_000 });
    const log: string[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void log.push(line) });
    // Leader election whose renew deadline outlasts the cut: only the dev pause is under test.
    const manager = new Manager(cut, { name: "devcut", logger, leaderElection: { namespace: ns, leaseDurationMs: 20_000, renewDeadlineMs: 15_000, retryPeriodMs: 300 } });
    const reconciled: string[] = [];
    manager.controller(ConfigMap).withOptions({ scope: { namespace: ns } }).reconcile(async (ref) => void reconciled.push(ref.name));
    const stop = new AbortController();
    const running = manager.run(stop.signal);
    const cms = client.resource(ConfigMap).namespace(ns);
    let override: DevOverride | undefined;
    try {
      await cms.create({ metadata: { name: "before" } });
      await eventually("the operator acts", async () => reconciled.includes("before"), { timeoutMs: 60_000 });
      override = await DevOverride.take(client, { namespace: ns, name: "devcut-dev" }, { leaderLease: { namespace: ns, name: "devcut-leader" }, leaseDurationMs: 15_000, renewMs: 1_000 });
      await eventually("paused", async () => manager.status.phase === "paused", { timeoutMs: 30_000 });
      const atPause = reconciled.length;

      proxy.cutAll();
      proxy.refuse();
      const cutAt = Date.now();
      while (Date.now() - cutAt < 5_000) {
        assert.equal(manager.status.phase, "paused", `${Date.now() - cutAt} ms into the cut the operator left its pause:\n${log.slice(-5).join("")}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(log.some((l) => l.includes("cannot read the dev override Lease")), "the failed read is logged");
      proxy.heal();
      await cms.create({ metadata: { name: "during" } });
      await eventually("a read succeeds again", async () => log.some((l) => l.includes("can be read again")), { timeoutMs: 30_000 });
      assert.equal(manager.status.phase, "paused", "the dev run still holds its Lease");
      assert.equal(reconciled.length, atPause, `nothing reconciled while paused: ${reconciled.slice(atPause).join(", ")}`);

      await override.release();
      override = undefined;
      await eventually("acts again once the dev Lease is released", async () => reconciled.includes("during"), { timeoutMs: 30_000 });
      assert.equal(manager.status.phase, "leading");
    } finally {
      proxy.heal();
      await override?.release();
      stop.abort();
      await running;
      await cut.close();
      await proxy.close();
    }
  });
});

describe("webhooks and the dev override", () => {
  it("a dev run puts the deployed operator's registration back when it stops; killed, the resumed operator takes it back at once", { timeout: 180_000 }, async () => {
    const ns = uniqueName("devwh");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const file = join(scratch, `webhooks-${ns}.ts`);
    writeFileSync(
      file,
      `import { AdmissionError, ConfigMap, Operator } from "../../../src/entries/index.js";
export const op = new Operator({ name: "${ns}", namespaces: ["${ns}"], leaderElection: { namespace: "${ns}", leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 } });
op.on.validate(ConfigMap, ({ object }) => {
  if (Number(object?.data?.size ?? 0) > 10) throw new AdmissionError("denied by " + process.env.WHO);
});
`,
    );
    const cms = client.resource(ConfigMap).namespace(ns);
    let n = 0;
    // Who answers the API server's call now (or why the call failed).
    const answeredBy = async () => {
      try {
        await cms.create({ metadata: { name: `big-${n++}` }, data: { size: "20" } });
        return "nobody: admitted";
      } catch (error) {
        const m = /denied by (\w+)/.exec(String(error));
        return m ? m[1] : String(error);
      }
    };
    const flags = ["--kubeconfig", kubeconfig, "--webhook-bind", "127.0.0.1:0", "--health-bind", "0", "--metrics-bind", "0", "--log-format", "json"];
    const cluster = kubeloop(["run", file, ...flags], "cluster");
    try {
      await eventually("the deployed operator answers", async () => (await answeredBy()) === "cluster", { timeoutMs: 60_000 });

      const dev = kubeloop(["run", file, ...flags, "--dev", "--dev-lease-ms", "3000"], "dev");
      await eventually("the dev run answers", async () => (await answeredBy()) === "dev", { timeoutMs: 60_000 });
      dev.kill("SIGTERM");
      assert.equal(await dev.exited, 0, dev.out().slice(-2000));
      assert.match(dev.out(), /webhook configurations restored as they were before this run/);
      assert.equal(await answeredBy(), "cluster", "at once after the dev run stopped, the deployed operator answers");

      const killed = kubeloop(["run", file, ...flags, "--dev", "--dev-lease-ms", "3000"], "dev2");
      await eventually("the second dev run answers", async () => (await answeredBy()) === "dev2", { timeoutMs: 60_000 });
      killed.kill("SIGKILL");
      await killed.exited;
      const killedAt = Date.now();
      await eventually("the deployed operator answers again", async () => (await answeredBy()) === "cluster", { timeoutMs: 60_000, intervalMs: 200 });
      const unwritable = Date.now() - killedAt;
      assert.ok(unwritable < 3_000 + 10_000, `the kind was unwritable for ${unwritable} ms after the dev run was killed (dev Lease 3 s)`);
      assert.match(cluster.out(), /the dev run ended: acting again/);
      process.stdout.write(`# after a SIGKILLed dev run, the kind was unwritable for ${unwritable} ms (dev Lease 3 s, retry 0.5 s)\n`);
    } finally {
      cluster.kill("SIGTERM");
      assert.equal(await cluster.exited, 0, cluster.out().slice(-2000));
      await client.resource(ValidatingWebhookConfiguration).delete(ns).catch(() => {});
    }
  });
});

describe("kubeloop dev --kubeconfig finds the deployed operator's Leases", () => {
  it("in the operator's own namespace (where generated manifests put them), whatever the developer's kubeconfig says; refuses when a deployed operator of that name cannot be paused", { timeout: 180_000 }, async () => {
    const ns = uniqueName("devns");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const dir = join(scratch, `devns-${ns}`);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "operator.ts");
    // No namespace for the Lease: as deployed, it goes to the operator's own (its kubeconfig's) namespace.
    writeFileSync(
      file,
      `import { ConfigMap, Operator } from "../../../../src/entries/index.js";
export const op = new Operator({ name: "${ns}", namespaces: ["${ns}"], leaderElection: { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 } });
op.on.create(ConfigMap, async ({ patch }) => void (patch.metadata.annotations["handled-by"] = process.env.WHO ?? "?"));
`,
    );
    const doc = YAML.parse(readFileSync(kubeconfig, "utf8")) as { contexts: { context: { namespace?: string } }[] };
    for (const c of doc.contexts) c.context.namespace = ns;
    const inNamespace = join(dir, "kubeconfig");
    writeFileSync(inNamespace, YAML.stringify(doc));
    const cms = client.resource(ConfigMap).namespace(ns);
    const handledBy = async (name: string) => (await cms.get(name)).metadata?.annotations?.["handled-by"];
    const cluster = kubeloop(["run", file, "--kubeconfig", inNamespace, "--health-bind", "0", "--metrics-bind", "0", "--log-format", "json"], "cluster");
    try {
      await cms.create({ metadata: { name: "c1" } });
      await eventually("the deployed operator acts", async () => (await handledBy("c1")) === "cluster", { timeoutMs: 60_000 });
      const dev = kubeloop(["dev", file, "--kubeconfig", kubeconfig, "--", "--health-bind", "0", "--log-format", "json"], "dev");
      try {
        await eventually("the dev loop paused the deployed operator", async () => /kubeloop dev: .* paused/.test(dev.out()) && dev.out().includes("caches synced"), { timeoutMs: 60_000 });
        assert.match(dev.out(), new RegExp(`Leases are in namespace ${ns}`));
        assert.match(cluster.out(), /paused by a dev run/);
        await cms.create({ metadata: { name: "d1" } });
        await eventually("d1 handled", async () => (await handledBy("d1")) !== undefined);
        assert.equal(await handledBy("d1"), "dev");
      } finally {
        dev.kill("SIGTERM");
        assert.equal(await dev.exited, 0, dev.out().slice(-2000));
      }
    } finally {
      cluster.kill("SIGTERM");
      assert.equal(await cluster.exited, 0, cluster.out().slice(-2000));
    }

    // A Deployment of the operator with no Lease beside it (deployed --standalone): it cannot be paused.
    const other = uniqueName("devns");
    await client.resource(Namespace).create({ metadata: { name: other } });
    const labels = { "app.kubernetes.io/name": ns };
    await client.resource(Deployment).namespace(other).create({ metadata: { name: ns, labels }, spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: "operator", image: "operator:latest" }] } } } });
    const refused = kubeloop(["dev", file, "--kubeconfig", kubeconfig], "dev");
    assert.notEqual(await refused.exited, 0);
    assert.match(refused.out(), new RegExp(`the Deployment ${ns} runs in ${other} with no Lease ${ns}-leader beside it: .*cannot be paused`));
  });
});

describe("kubeloop pause / resume", () => {
  it("pauses the operator running in the cluster without a running process: until the time has passed, or until resumed", { timeout: 180_000 }, async () => {
    const ns = uniqueName("pause");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const file = join(scratch, `pause-${ns}.ts`);
    writeFileSync(
      file,
      `import { ConfigMap, Operator } from "../../../src/entries/index.js";
export const op = new Operator({ name: "${ns}", namespaces: ["${ns}"], leaderElection: { namespace: "${ns}", leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 } });
op.on.create(ConfigMap, async ({ patch }) => void (patch.metadata.annotations["handled-at"] = String(Date.now())));
`,
    );
    const cms = client.resource(ConfigMap).namespace(ns);
    const handledAt = async (name: string) => Number((await cms.get(name)).metadata?.annotations?.["handled-at"] ?? NaN);
    const cluster = kubeloop(["run", file, "--kubeconfig", kubeconfig, "--health-bind", "0", "--metrics-bind", "0", "--log-format", "json"], "cluster");
    try {
      await cms.create({ metadata: { name: "c1" } });
      await eventually("the operator acts", async () => !Number.isNaN(await handledAt("c1")), { timeoutMs: 60_000 });

      // A pause for 5 s: acknowledged, then over by itself.
      const pausedAt = Date.now();
      const paused = kubeloop(["pause", ns, "--for", "5s", "--kubeconfig", kubeconfig], "cli");
      assert.equal(await paused.exited, 0, paused.out());
      assert.match(paused.out(), new RegExp(`${ns} is paused in ${ns} until`));
      assert.match(cluster.out(), /"devRun":"pause:[^"]+","msg":"paused by a dev run/);
      await cms.create({ metadata: { name: "c2" } });
      await eventually("c2 handled once the pause expired", async () => !Number.isNaN(await handledAt("c2")), { timeoutMs: 60_000 });
      assert.ok((await handledAt("c2")) >= pausedAt + 5_000, `c2 handled ${(await handledAt("c2")) - pausedAt} ms after the 5 s pause began`);

      // A long pause, ended by kubeloop resume.
      const long = kubeloop(["pause", ns, "--for", "1h", "--kubeconfig", kubeconfig], "cli");
      assert.equal(await long.exited, 0, long.out());
      await cms.create({ metadata: { name: "c3" } });
      const resumedAt = Date.now();
      const resumed = kubeloop(["resume", ns, "--kubeconfig", kubeconfig], "cli");
      assert.equal(await resumed.exited, 0, resumed.out());
      assert.match(resumed.out(), /resumed/);
      await eventually("c3 handled after the resume", async () => !Number.isNaN(await handledAt("c3")), { timeoutMs: 20_000 });
      assert.ok((await handledAt("c3")) >= resumedAt, "not handled while paused");
      const bad = kubeloop(["pause", ns, "--for", "soon", "--kubeconfig", kubeconfig], "cli");
      assert.equal(await bad.exited, 2, "a usage mistake");
      assert.match(bad.out(), /--for soon: expected a duration/);
    } finally {
      cluster.kill("SIGTERM");
      assert.equal(await cluster.exited, 0, cluster.out().slice(-2000));
    }
  });
});

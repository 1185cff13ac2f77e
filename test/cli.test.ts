// The kubeloop command against the shared cluster: `run` (errors by name, a real run, graceful
// SIGTERM) and `dev` (restart on a file change).
import assert from "node:assert/strict";
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Client, ConfigMap, Namespace } from "../src/entries/index.js";
import { FaultProxy } from "../src/entries/testing.js";
import { Greeting } from "../examples/10-minimal/operator.js";
import { call, eventually, identityFromKubeconfig, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";
import { spawnKubeloop } from "./support.js";

const root = fileURLToPath(new URL("..", import.meta.url));

let kubeconfig: string;
let client: Client;
const scratch = join(root, "test", "fixtures", `cli-${process.pid}`);

before(async () => {
  kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  mkdirSync(scratch, { recursive: true });
});
after(async () => {
  rmSync(scratch, { recursive: true, force: true });
  await client?.close();
  await releaseSharedCluster();
});

const kubeloop = spawnKubeloop;

describe("kubeloop run", () => {
  it("names the problem: no operator exported, no kubeconfig, a CRD not installed", { timeout: 60_000 }, async () => {
    writeFileSync(join(scratch, "empty.ts"), "export const nothing = 1;\n");
    const empty = kubeloop(["run", join(scratch, "empty.ts"), "--kubeconfig", kubeconfig]);
    assert.equal(await empty.exited, 1);
    assert.match(empty.out(), /exports no Operator/);

    const noConfig = kubeloop(["run", "examples/10-minimal/operator.ts"], { ...process.env, KUBECONFIG: "", HOME: scratch });
    assert.equal(await noConfig.exited, 1);
    assert.match(noConfig.out(), /cannot load a kubeconfig: .*no kubeconfig/i);

    // A namespace flag that can match no namespace: named before anything connects.
    const badNamespace = kubeloop(["run", "examples/10-minimal/operator.ts", "-n", "Team_A"], { ...process.env, KUBECONFIG: "", HOME: scratch });
    assert.equal(await badNamespace.exited, 1);
    assert.match(badNamespace.out(), /namespace pattern "Team_A" can match no namespace/);

    // A kind whose CRD was never installed (other tests share the cluster: not one of theirs).
    writeFileSync(
      join(scratch, "uninstalled.ts"),
      `import { Operator, Type, defineResource } from "../../../src/entries/index.js";
export const Ghost = defineResource({ group: "ghosts-${process.pid}.kubeloop.dev", version: "v1", kind: "Ghost", spec: Type.Object({}) });
export const op = new Operator({ name: "ghosts" });
op.on.create(Ghost, async () => {});
`,
    );
    const noCrd = kubeloop(["run", join(scratch, "uninstalled.ts"), "--kubeconfig", kubeconfig, "--standalone"]);
    assert.equal(await noCrd.exited, 1);
    assert.match(noCrd.out(), /ghosts-\d+\.kubeloop\.dev\/v1 Ghost is not served .*install its CustomResourceDefinition/);
  });

  it("runs an operator with --install-crds in one namespace, stops cleanly on SIGTERM", { timeout: 90_000 }, async () => {
    const ns = uniqueName("cli");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const run = kubeloop(["run", "examples/10-minimal/operator.ts", "--kubeconfig", kubeconfig, "--standalone", "--install-crds", "-n", ns, "--metrics-bind", "127.0.0.1:0", "--health-bind", "127.0.0.1:0", "--log-format", "json"]);
    after(() => run.kill("SIGKILL")); // if an assertion below fails
    await eventually("caches synced", async () => run.out().includes("caches synced"), { timeoutMs: 60_000 });
    const urls = [...run.out().matchAll(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/g)].map((m) => m[1]);
    assert.equal(new Set(urls).size, 2, `two probe servers: ${urls.join(", ")}`);
    for (const url of urls) assert.equal((await fetch(`${url}/readyz`)).status, 200);
    await client.resource(Greeting).namespace(ns).create({ metadata: { name: "cli" }, spec: { name: "cli" } });
    await eventually("handled", async () => ((await client.resource(Greeting).namespace(ns).get("cli")).status as { greet?: unknown })?.greet);
    run.kill("SIGTERM");
    assert.equal(await run.exited, 0);
    assert.match(run.out(), /signal received: stopping gracefully/);
  });
});

describe("kubeloop run with op.on.login", () => {
  it("takes its client from the login handler, not from --kubeconfig", { timeout: 60_000 }, async () => {
    const ns = uniqueName("login");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    writeFileSync(
      join(scratch, "login.ts"),
      `import { Client, ConfigMap, Operator } from "../../../src/entries/index.js";
export const op = new Operator({ name: "login", namespaces: ["${ns}"] });
op.on.login(async ({ logger }) => {
  logger.info("LOGIN HANDLER CALLED");
  return Client.load({ path: process.env.LOGIN_KUBECONFIG });
});
op.on.create(ConfigMap, async ({ patch }) => void (patch.metadata.labels.via = "login"));
`,
    );
    // --kubeconfig names nothing: only the login handler can connect.
    const run = kubeloop(["run", join(scratch, "login.ts"), "--kubeconfig", join(scratch, "no-such-kubeconfig"), "--standalone", "--metrics-bind", "0", "--health-bind", "0", "--log-format", "json"], { ...process.env, LOGIN_KUBECONFIG: kubeconfig });
    after(() => run.kill("SIGKILL"));
    await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "c" } });
    await eventually("handled", async () => (await client.resource(ConfigMap).namespace(ns).get("c")).metadata?.labels?.via === "login", { timeoutMs: 45_000 });
    assert.match(run.out(), /LOGIN HANDLER CALLED/);
    run.kill("SIGTERM");
    assert.equal(await run.exited, 0, run.out());
  });
});

describe("kubeloop dev with webhooks", () => {
  it("serves and registers the webhooks of the operator it runs, and says once the API server calls them: the first request after that is checked", { timeout: 120_000 }, async () => {
    const dir = join(scratch, "dev-webhooks");
    mkdirSync(dir, { recursive: true });
    const name = uniqueName("devwh");
    const group = `${name}.kubeloop.dev`;
    writeFileSync(
      join(dir, "operator.ts"),
      `import { AdmissionError, Operator, Type, defineResource } from "../../../../src/entries/index.js";
export const Thing = defineResource({ group: "${group}", version: "v1", kind: "Thing", spec: Type.Object({ n: Type.Integer() }) });
export const op = new Operator({ name: "${name}", webhooks: { port: 0, host: "127.0.0.1", removeOnStop: true } });
op.on.validate(Thing, ({ object }) => {
  if ((object?.spec.n ?? 0) > 3) throw new AdmissionError("n must be at most 3 (dev webhook)");
});
`,
    );
    const dev = kubeloop(["dev", join(dir, "operator.ts"), "--kubeconfig", kubeconfig, "--", "--metrics-bind", "0", "--health-bind", "0", "--log-format", "json"]);
    try {
      const ns = uniqueName("devwh");
      await client.resource(Namespace).create({ metadata: { name: ns } });
      await eventually("the dev run says its webhooks are in effect", async () => dev.out().includes("webhooks in effect"), { timeoutMs: 60_000 });
      // Once, not until refused: the line promises that every request from then on is checked.
      const refused = await call(identityFromKubeconfig(kubeconfig), "POST", `/apis/${group}/v1/namespaces/${ns}/things`, { apiVersion: `${group}/v1`, kind: "Thing", metadata: { name: "t" }, spec: { n: 9 } });
      assert.equal(refused.status, 403, `the first create after the line was checked: ${JSON.stringify(refused.body)}`);
      assert.match(refused.body.message, /n must be at most 3 \(dev webhook\)/);
    } finally {
      dev.kill("SIGINT");
      assert.equal(await dev.exited, 0, dev.out().slice(-2000));
    }
  });
});

describe("kubeloop run when the Lease is lost", () => {
  it("exits non-zero after the grace deadline even though a daemon ignores its signal", { timeout: 90_000 }, async () => {
    const ns = uniqueName("lost");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const cluster = await sharedCluster();
    const proxy = await FaultProxy.start(cluster.server);
    const cut = proxy.rewriteKubeconfig(kubeconfig, join(scratch, `lost-${ns}`));
    writeFileSync(
      join(scratch, "stubborn.ts"),
      `import { ConfigMap, Operator } from "../../../src/entries/index.js";
export const op = new Operator({
  name: "stubborn",
  namespaces: ["${ns}"],
  gracefulShutdownTimeoutMs: 1_000,
  leaderElection: { namespace: "${ns}", leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 },
});
// A daemon that ignores its signal and would keep the process alive for ever.
op.daemon(ConfigMap, async () => {
  console.log("DAEMON STARTED");
  await new Promise(() => setInterval(() => {}, 1_000));
}, { cancellationTimeoutMs: 500 });
`,
    );
    await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "keep-busy" } });
    const run = kubeloop(["run", join(scratch, "stubborn.ts"), "--kubeconfig", cut, "--metrics-bind", "127.0.0.1:0", "--log-format", "json"]);
    try {
      await eventually("the daemon runs on the leader", async () => run.out().includes("DAEMON STARTED"), { timeoutMs: 60_000 });
      proxy.cutAll();
      proxy.refuse();
      const cutAt = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([run.exited, new Promise<"alive">((r) => (timer = setTimeout(() => r("alive"), 20_000)))]);
      clearTimeout(timer);
      assert.notEqual(code, "alive", `still running 20 s after losing the API server:\n${run.out().slice(-2000)}`);
      assert.notEqual(code, 0, "exits non-zero");
      assert.match(run.out(), /lost the Lease/);
      process.stdout.write(`# exited ${code} ${Date.now() - cutAt} ms after the cut (renew deadline 2 s, grace 1 s)\n`);
    } finally {
      run.kill("SIGKILL");
      await proxy.close();
    }
  });
});

describe("kubeloop dev", () => {
  it("restarts the operator when its file changes", { timeout: 120_000 }, async () => {
    const dir = join(scratch, "dev");
    mkdirSync(dir, { recursive: true });
    const source = (greeting: string) => `import { Operator } from "../../../../src/entries/index.js";
import { Greeting } from "../../../../examples/10-minimal/operator.js";
export const op = new Operator({ name: "dev-test" });
op.on.create(Greeting, async function greet() { return "${greeting}"; });
`;
    writeFileSync(join(dir, "operator.ts"), source("first"));
    // Another process holds 8080 (another operator on the machine): the dev loop must not need it.
    const squatter = createServer();
    await new Promise<void>((resolve) => {
      squatter.once("error", () => resolve()); // already held by someone: the same situation
      squatter.listen(8080, "0.0.0.0", () => resolve());
    });
    // An editor's atomic save: a temporary file renamed over the original (vim, JetBrains, sed -i).
    const atomicSave = (text: string) => {
      writeFileSync(join(dir, ".operator.ts.swp"), text);
      renameSync(join(dir, ".operator.ts.swp"), join(dir, "operator.ts"));
    };
    const dev = kubeloop(["dev", join(dir, "operator.ts"), "--kubeconfig", kubeconfig, "--", "--log-format", "json"]);
    const synced = () => dev.out().split("caches synced").length - 1;
    const ns = uniqueName("dev");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const greeted = async (name: string) => ((await client.resource(Greeting).namespace(ns).get(name)).status as { greet?: unknown })?.greet;
    try {
      await eventually("operator running", async () => synced() >= 1, { timeoutMs: 60_000 });
      assert.match(dev.out(), new RegExp(`KUBECONFIG=${kubeconfig}`));
      for (const [i, version] of ["second", "third"].entries()) {
        atomicSave(source(version));
        await eventually(`restarted after atomic save ${i + 1}`, async () => synced() >= i + 2, { timeoutMs: 60_000 });
        await client.resource(Greeting).namespace(ns).create({ metadata: { name: version }, spec: { name: version } });
        await eventually(`handled by the ${version} code`, async () => (await greeted(version)) === version);
      }
      assert.match(dev.out(), /operator\.ts changed: restarting the operator/);
    } finally {
      dev.kill("SIGINT");
      assert.equal(await dev.exited, 0);
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});

describe("kubeloop run after a graceful stop (kopf's 13-hooks)", () => {
  it("lets background tasks a cleanup handler asked to stop finish, within the graceful-shutdown budget; past it, exits", { timeout: 120_000 }, async () => {
    const dir = join(scratch, "hooks");
    mkdirSync(dir, { recursive: true });
    const source = (finishMs: number) => `import { ConfigMap, Operator } from "../../../../src/entries/index.js";
export const op = new Operator({ name: "hooks-${process.pid}", namespaces: ["default"], gracefulShutdownTimeoutMs: 3000 });
let stopping = false;
const tasks: Promise<void>[] = [];
op.on.startup(() => {
  tasks.push((async () => {
    while (!stopping) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, ${finishMs})); // cleaning up after the request
    console.log("background task finished by request");
  })());
});
op.on.cleanup(() => { stopping = true; console.log("cleanup: asked the background task to stop"); });
op.on.event(ConfigMap, () => {});
`;
    for (const [finishMs, finishes] of [[500, true], [60_000, false]] as const) {
      const file = join(dir, `operator-${finishMs}.ts`);
      writeFileSync(file, source(finishMs));
      const run = kubeloop(["run", file, "--kubeconfig", kubeconfig, "--standalone", "--metrics-bind", "0", "--health-bind", "0", "--log-format", "json"]);
      await eventually("running", async () => run.out().includes("caches synced"), { timeoutMs: 60_000 });
      const termAt = Date.now();
      run.kill("SIGTERM");
      assert.equal(await run.exited, 0, run.out().slice(-2000));
      const took = Date.now() - termAt;
      assert.match(run.out(), /cleanup: asked the background task to stop/);
      if (finishes) {
        assert.match(run.out(), /background task finished by request/);
        assert.doesNotMatch(run.out(), /still ran at the shutdown deadline/, "the process exits once nothing runs (nothing of kubeloop's lingers)");
      } else {
        assert.doesNotMatch(run.out(), /background task finished by request/);
        assert.match(run.out(), /still ran at the shutdown deadline/);
        assert.ok(took < 3_000 + 5_000, `exited ${took} ms after SIGTERM (budget 3 s)`);
      }
    }
  });
});

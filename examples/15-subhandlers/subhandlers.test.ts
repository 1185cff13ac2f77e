import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Client, ConfigMap, Namespace } from "kubeloop";
import { installCrd, runOperator, waitFor, type OperatorUnderTest } from "kubeloop/testing";
import { releaseSharedCluster, sharedCluster, uniqueName } from "../../test/helpers.js";
import { spawnTs } from "../../test/support.js";
import { Team, op } from "./operator.js";

let client: Client;
let kubeconfig: string;
let running: OperatorUnderTest | undefined;
const kills: (() => void)[] = [];
before(async () => {
  kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  await installCrd(client, Team.crd);
});
after(async () => {
  for (const kill of kills) kill();
  await running?.stop();
  await client?.close();
  await releaseSharedCluster();
});

type Status = Record<string, { configMap?: string; attempts?: number; members?: number } | undefined> | undefined;
const progressOf = async (ns: string, name: string) => JSON.parse((await client.resource(Team).namespace(ns).get(name)).metadata?.annotations?.["teams.kubeloop.dev/progress"] ?? "{}") as Record<string, { retries?: number; success?: boolean }>;

it("15-subhandlers: one sub-handler per member, each with its own retries and result; the flaky one alone is retried", { timeout: 60_000 }, async () => {
  const ns = uniqueName("ex15");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  running = await runOperator(op, { client });
  const teams = client.resource(Team).namespace(ns);
  await teams.create({ metadata: { name: "core" }, spec: { members: ["ann", "flaky-bob", "cy"] } });
  const status = await waitFor("the team provisioned", async () => {
    const s = (await teams.get("core")).status as Status;
    return s?.provision ? s : undefined;
  });
  assert.deepEqual(status?.provision, { members: 3 });
  assert.deepEqual(status?.["provision/ann"], { configMap: "core-ann", attempts: 1 });
  assert.deepEqual(status?.["provision/flaky-bob"], { configMap: "core-flaky-bob", attempts: 3 }, "two TemporaryErrors, then success");
  assert.deepEqual(status?.["provision/cy"], { configMap: "core-cy", attempts: 1 }, "cy ran once, after flaky-bob, not again");
  const cms = (await client.resource(ConfigMap).namespace(ns).list()).items.map((c) => c.metadata?.name).filter((n) => n?.startsWith("core-"));
  assert.deepEqual(cms.sort(), ["core-ann", "core-cy", "core-flaky-bob"]);
  assert.deepEqual(await progressOf(ns, "core"), {}, "progress cleared once all succeeded");
  await running.stop();
  running = undefined;
});

it("15-subhandlers: killed between members, the restarted operator runs only the sub-handlers that had not finished", { timeout: 90_000 }, async () => {
  const ns = uniqueName("ex15k");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const runner = fileURLToPath(new URL("./run.ts", import.meta.url));
  const spawn = (env: NodeJS.ProcessEnv) => {
    const s = spawnTs(runner, [kubeconfig, ns], () => {}, { env: { ...process.env, ...env } });
    kills.push(() => s.process.exitCode === null && s.process.signalCode === null && s.process.kill("SIGKILL"));
    return s;
  };
  const first = spawn({ HANG_MEMBER: "c" });
  await waitFor("the first operator running", async () => first.lines.includes("STARTED"), { timeoutMs: 60_000 });
  const teams = client.resource(Team).namespace(ns);
  await teams.create({ metadata: { name: "ops" }, spec: { members: ["a", "b", "c"] } });
  await waitFor("a and b recorded, c running", async () => {
    const p = await progressOf(ns, "ops");
    return p["provision/a"]?.success && p["provision/b"]?.success && first.lines.includes("SUB c");
  });
  first.process.kill("SIGKILL");
  await first.exited;

  const second = spawn({});
  await waitFor("the team provisioned after the restart", async () => ((await teams.get("ops")).status as Status)?.provision?.members === 3, { timeoutMs: 60_000 });
  assert.deepEqual(second.lines.filter((l) => l.startsWith("SUB ")), ["SUB c"], "only the unfinished member ran again");
  second.process.kill("SIGTERM");
  assert.equal(await second.exited, 0, second.stderr());
});

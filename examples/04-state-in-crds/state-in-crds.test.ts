import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, Namespace, NotFoundError } from "kubeloop";
import { installCrd, runOperator, waitFor, type OperatorUnderTest } from "kubeloop/testing";
import { releaseSharedCluster, sharedCluster, uniqueName } from "../../test/helpers.js";
import { IPClaim, Pool, addresses, op } from "./operator.js";

let client: Client;
let running: OperatorUnderTest;
before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
  await installCrd(client, Pool.crd);
  await installCrd(client, IPClaim.crd);
  running = await runOperator(op, { client });
});
after(async () => {
  await running?.stop();
  await client?.close();
  await releaseSharedCluster();
});

it("04-state-in-crds: concurrent claims get distinct addresses; releases free them; exhaustion waits", { timeout: 90_000 }, async () => {
  assert.deepEqual(addresses("10.0.0.0/29"), ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
  const ns = uniqueName("ex04");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  await client.resource(Pool).namespace(ns).create({ metadata: { name: "net" }, spec: { cidr: "10.0.0.0/28" } }); // 14 addresses
  const claims = client.resource(IPClaim).namespace(ns);
  const address = async (name: string) => ((await claims.get(name)).status as { address?: string } | undefined)?.address;
  // 12 claims at once: the operator handles 16 objects in parallel, so allocations race on the Pool.
  await Promise.all(Array.from({ length: 12 }, (_, i) => claims.create({ metadata: { name: `c${i}` }, spec: { pool: "net" } })));
  const ips = await waitFor("12 addresses", async () => {
    const all = await Promise.all(Array.from({ length: 12 }, (_, i) => address(`c${i}`)));
    return all.every(Boolean) ? (all as string[]) : undefined;
  });
  assert.equal(new Set(ips).size, 12, `distinct addresses: ${ips.join(", ")}`);
  const pool = await client.resource(Pool).namespace(ns).get("net");
  assert.equal(Object.keys(pool.status?.allocations ?? {}).length, 12);

  // 3 more: the pool has 14, so one waits until an address is released.
  for (const name of ["x1", "x2", "x3"]) await claims.create({ metadata: { name }, spec: { pool: "net" } });
  await waitFor("2 of 3 allocated", async () => (await Promise.all(["x1", "x2", "x3"].map(address))).filter(Boolean).length === 2);
  await claims.delete("c0");
  await waitFor("c0 gone (finalizer released)", async () => claims.get("c0").then(() => false, (e) => e instanceof NotFoundError));
  await waitFor("the waiting claim gets c0's address", async () => (await Promise.all(["x1", "x2", "x3"].map(address))).filter(Boolean).length === 3, { timeoutMs: 30_000 });
  const final = await client.resource(Pool).namespace(ns).get("net");
  assert.equal(Object.keys(final.status?.allocations ?? {}).length, 14);
  assert.ok(!Object.values(final.status?.allocations ?? {}).includes(`${ns}/c0`));
});

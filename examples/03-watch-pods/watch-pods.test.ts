import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, Namespace, Pod } from "kubeloop";
import { waitFor } from "kubeloop/testing";
import { releaseSharedCluster, sharedCluster, uniqueName } from "../../test/helpers.js";
import { watchPods } from "./operator.js";

let client: Client;
before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
});
after(async () => {
  await client?.close();
  await releaseSharedCluster();
});

it("03-watch-pods: prints existing pods, then additions, changes and deletions", async () => {
  const ns = uniqueName("ex03");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const pods = client.resource(Pod).namespace(ns);
  await pods.create({ metadata: { name: "before" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  const lines: string[] = [];
  const stop = new AbortController();
  const done = watchPods(client, ns, stop.signal, (l) => lines.push(l));
  try {
    await waitFor("synced", () => lines.includes("SYNCED"));
    await pods.create({ metadata: { name: "web" }, spec: { containers: [{ name: "c", image: "busybox" }] } });
    await pods.patch("web", { metadata: { labels: { tier: "front" } } }, { type: "merge" });
    await pods.delete("web", { gracePeriodSeconds: 0 });
    await waitFor("the deletion", () => lines.includes("DELETED web"));
    assert.equal(lines[0], 'EXISTS before phase=Pending labels={}');
    assert.ok(lines.includes('ADDED web phase=Pending labels={}'), lines.join("\n"));
    assert.ok(lines.includes('MODIFIED web phase=Pending labels={"tier":"front"}'), lines.join("\n"));
  } finally {
    stop.abort();
    await done;
  }
});

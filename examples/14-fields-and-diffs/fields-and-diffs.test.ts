import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, Event, Namespace } from "kubeloop";
import { installCrd, runOperator, waitFor, type OperatorUnderTest } from "kubeloop/testing";
import { releaseSharedCluster, sharedCluster, uniqueName } from "../../test/helpers.js";
import { Setting, op } from "./operator.js";

let client: Client;
let running: OperatorUnderTest | undefined;
before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
  await installCrd(client, Setting.crd);
});
after(async () => {
  await running?.stop();
  await client?.close();
  await releaseSharedCluster();
});

type Status = { created?: string; changes?: string[]; levelRaised?: { from: number | null; to: number } } | undefined;

it("14-fields-and-diffs: diffs across a restart, field handlers with old/new and filters", { timeout: 60_000 }, async () => {
  const ns = uniqueName("ex14");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const settings = client.resource(Setting).namespace(ns);
  running = await runOperator(op, { client });
  await settings.create({ metadata: { name: "audited", labels: { audited: "yes" } }, spec: { level: 1 } });
  await settings.create({ metadata: { name: "plain" }, spec: { level: 1 } });
  await waitFor("both created", async () => ((await settings.get("audited")).status as Status)?.created === "seen" && ((await settings.get("plain")).status as Status)?.created === "seen");

  await running.stop(); // changes while the operator is down are still seen as one update
  running = undefined;
  for (const name of ["audited", "plain"]) await settings.patch(name, { spec: { level: 7, notes: "raised" } }, { type: "merge" });
  running = await runOperator(op, { client });

  const audited = await waitFor("audited handled", async () => {
    const s = (await settings.get("audited")).status as Status;
    return s?.changes && s.levelRaised ? s : undefined;
  });
  assert.deepEqual(audited.changes, ["change spec.level: 1 → 7", 'add spec.notes: undefined → "raised"']);
  assert.deepEqual(audited.levelRaised, { from: 1, to: 7 });
  await waitFor("the field handler's log line as an Event", async () => (await client.resource(Event).namespace(ns).list()).items.some((e) => e.regarding?.name === "audited" && e.reason === "Logging" && /level raised from 1 to 7/.test(e.note ?? "")));
  const plain = await waitFor("plain handled", async () => ((await settings.get("plain")).status as Status)?.changes && ((await settings.get("plain")).status as Status));
  assert.equal(plain?.levelRaised, undefined, "the field handler's label filter left it out");
});

// Two replicas of one operator with managed webhooks behind one address (a TCP forwarder the
// test pins to either replica, as a Service might route): they share one CA and serving
// certificate (a Secret the first one makes), so the API server's calls succeed whichever replica
// answers; and the leader writes the registration back when someone else changed it.
import assert from "node:assert/strict";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { AdmissionError, Client, ConfigMap, Operator, Secret, ValidatingWebhookConfiguration } from "../src/entries/index.js";
import { runOperator, type OperatorUnderTest } from "../src/entries/testing.js";
import { createNamespace, eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

let client: Client;
const running: OperatorUnderTest[] = [];
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
});
after(async () => {
  for (const op of running) await op.stop().catch(() => {});
  for (const c of cleanups) await c().catch(() => {});
  await client?.close();
  await releaseSharedCluster();
});

/** One address in front of the replicas; `pin(port)` sends new connections to that replica. */
async function forwarder(): Promise<{ port: number; pin: (port: number) => void; connections: Map<number, number>; close: () => Promise<void> }> {
  let target = 0;
  const connections = new Map<number, number>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    const to = target;
    connections.set(to, (connections.get(to) ?? 0) + 1);
    const upstream = connect(to, "127.0.0.1");
    for (const s of [socket, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    pin: (port) => {
      target = port;
      for (const s of sockets) s.destroy(); // the API server keeps connections: make it reconnect
    },
    connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe("managed webhooks with two replicas", () => {
  it("share one CA and certificate: calls pinned to either replica succeed; the leader re-asserts a registration someone else changed", { timeout: 120_000 }, async () => {
    const ns = await createNamespace(client, "whrep");
    const name = uniqueName("whrep");
    const proxy = await forwarder();
    cleanups.push(proxy.close, async () => void (await client.resource(ValidatingWebhookConfiguration).delete(name)));
    const replica = async (who: string) => {
      const op = new Operator({ name, namespaces: [ns], leaderElection: { namespace: ns, leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 500 } });
      op.on.validate(ConfigMap, ({ object }) => {
        if (Number(object?.data?.size ?? 0) > 10) throw new AdmissionError(`denied by ${who}: size too large`, { code: 422, reason: "Invalid" });
      });
      const r = await runOperator(op, { client, leaderElection: true, logger: pino({ level: "silent" }), webhooks: { port: 0, host: "127.0.0.1", url: `https://127.0.0.1:${proxy.port}` } });
      running.push(r);
      return r;
    };
    const a = await replica("a");
    const b = await replica("b");
    const portOf = (r: OperatorUnderTest) => Number(new URL(r.webhookUrl ?? "").port);
    const cms = client.resource(ConfigMap).namespace(ns);
    let n = 0;
    // A denied create, answered by replica `who`. Right after a pin the API server may still write
    // on a kept-alive connection the forwarder just cut (broken pipe, reset): the test's own cut,
    // tried again; any other failure (x509: unknown authority) fails the test at once.
    const deniedBy = (who: string) =>
      eventually(`a call answered by replica ${who}`, async () => {
        const refused = await cms.create({ metadata: { name: `big-${n++}` }, data: { size: "20" } }).then(() => new Error("admitted"), (error: unknown) => error as Error);
        if (new RegExp(`denied by ${who}: size too large`).test(refused.message)) return true;
        if (/broken pipe|connection reset|EOF/.test(refused.message)) return false;
        throw refused;
      }, { timeoutMs: 30_000, intervalMs: 100 });
    for (const [who, r] of [["a", a], ["b", b]] as const) {
      proxy.pin(portOf(r));
      await deniedBy(who);
      await cms.create({ metadata: { name: `ok-${who}` }, data: { size: "1" } });
      assert.ok((proxy.connections.get(portOf(r)) ?? 0) > 0);
    }
    const secret = await client.resource(Secret).namespace(ns).get(`${name}-webhook-selfsigned`);
    const registered = await client.resource(ValidatingWebhookConfiguration).get(name);
    assert.equal(registered.webhooks?.[0]?.clientConfig.caBundle, secret.data?.["ca.crt"], "the registered caBundle is the shared CA");

    // Someone else points the webhook elsewhere: the leader writes it back.
    const bogus = { ...registered, webhooks: registered.webhooks?.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, url: "https://127.0.0.1:1/elsewhere" } })) };
    await client.resource(ValidatingWebhookConfiguration).replace(bogus);
    await eventually("the registration is written back", async () => (await client.resource(ValidatingWebhookConfiguration).get(name)).webhooks?.[0]?.clientConfig.url?.startsWith(`https://127.0.0.1:${proxy.port}/`) === true, { timeoutMs: 30_000 });
    proxy.pin(portOf(a));
    await deniedBy("a");
  });
});

// 03 — watch pods: the runtime basics. A watcher that survives disconnects, expired
// resourceVersions and server restarts (it relists and reports only differences), printing one
// line per change. Run: node --import tsx examples/03-watch-pods/operator.ts [namespace]
import { pathToFileURL } from "node:url";
import { Client, Pod as PodKind, type ObjectOf } from "kubeloop";
import { createStore, reflect, watch } from "kubeloop/runtime";

type Pod = ObjectOf<typeof PodKind>;

/**
 * Calls `print` with a line per pod change in `namespace` until `signal` aborts. `reflect`
 * keeps a store of the pods as it passes the events on, and gives each update its previous
 * state (`old`): that is how an update is told from an addition.
 */
export async function watchPods(client: Client, namespace: string, signal: AbortSignal, print: (line: string) => void): Promise<void> {
  const pods = createStore<Pod>(); // pods.store: the cache, for readers; pods.writer: for reflect() alone
  for await (const event of reflect(watch(client.resource(PodKind), { namespace, signal }), pods.writer)) {
    switch (event.type) {
      case "initApply":
      case "apply": {
        const pod = event.object;
        const verb = event.type === "initApply" ? "EXISTS" : event.old ? "MODIFIED" : "ADDED";
        print(`${verb} ${pod.metadata?.name} phase=${pod.status?.phase ?? "Unknown"} labels=${JSON.stringify(pod.metadata?.labels ?? {})}`);
        break;
      }
      case "delete":
        print(`DELETED ${event.object.metadata?.name}`);
        break;
      case "initDone":
        print("SYNCED");
        break;
      case "error":
        print(`RECOVERING ${event.error.message}`); // the watcher retries by itself
        break;
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const client = await Client.load();
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  await watchPods(client, process.argv[2] ?? client.defaultNamespace, stop.signal, (line) => console.log(line));
  await client.close();
}

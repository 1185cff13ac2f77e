// 02 — list pods: the client basics. Lists the pods of a namespace (all pages) and prints
// name, phase and node. Run: node --import tsx examples/02-list-pods/operator.ts [namespace]
import { pathToFileURL } from "node:url";
import { Client, Pod } from "kubeloop";

export interface PodLine {
  name: string;
  phase: string;
  node: string;
}

/** The pods of `namespace`, 100 per request, as printable lines. */
export async function listPods(client: Client, namespace: string): Promise<PodLine[]> {
  const pods = await client.resource(Pod).namespace(namespace).listAll({ pageSize: 100 });
  return pods.items.map((p) => ({ name: p.metadata?.name ?? "", phase: p.status?.phase ?? "Unknown", node: p.spec?.nodeName ?? "<unscheduled>" }));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const client = await Client.load();
  const namespace = process.argv[2] ?? client.defaultNamespace;
  for (const p of await listPods(client, namespace)) console.log(`${p.name.padEnd(40)} ${p.phase.padEnd(10)} ${p.node}`);
  await client.close();
}

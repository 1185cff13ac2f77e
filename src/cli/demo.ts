// `kubeloop demo` (npm run demo): for now, start the local control plane and show that it
// serves a real Kubernetes API. The example operator joins it with the CLI issue.
import { Client } from "../client/client.js";
import { Namespace } from "../core/builtins.js";
import { startControlPlane } from "../testing/control-plane/control-plane.js";

const say = (message: string) => process.stdout.write(`${message}\n`);

export async function run(_args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const started = Date.now();
  const cp = await startControlPlane({
    env,
    onProgress: (m) => process.stderr.write(`kubeloop: ${m}\n`),
  });
  try {
    say(`control plane up in ${((Date.now() - started) / 1000).toFixed(1)} s at ${cp.server}`);
    say(`KUBECONFIG=${cp.kubeconfigPath}`);
    const client = await Client.load({ path: cp.kubeconfigPath });
    try {
      const version = await client.request<{ gitVersion: string }>({ method: "GET", path: "/version" });
      say(`server version: ${version.gitVersion}`);
      const namespaces = await client.resource(Namespace).list();
      say(`namespaces: ${namespaces.items.map((n) => n.metadata?.name).join(", ")}`);
    } finally {
      await client.close();
    }
    return 0;
  } finally {
    await cp.stop();
    say("control plane stopped");
  }
}

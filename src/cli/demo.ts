// `kubeloop demo` (npm run demo): for now, start the local control plane and show that it
// serves a real Kubernetes API. The example operator joins it with the CLI issue.
import { request } from "node:https";
import { startControlPlane, type ControlPlane } from "../testing/control-plane/control-plane.js";

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
    const version = (await get(cp, "/version")) as { gitVersion: string };
    say(`server version: ${version.gitVersion}`);
    const namespaces = (await get(cp, "/api/v1/namespaces")) as { items: { metadata: { name: string } }[] };
    say(`namespaces: ${namespaces.items.map((n) => n.metadata.name).join(", ")}`);
    return 0;
  } finally {
    await cp.stop();
    say("control plane stopped");
  }
}

function get(cp: ControlPlane, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${cp.server}${path}`,
      { ca: cp.caCertificate, cert: cp.admin?.certificate, key: cp.admin?.key, timeout: 10_000 },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () =>
          res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`GET ${path}: HTTP ${res.statusCode} ${body}`)),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on("error", reject);
    req.end();
  });
}

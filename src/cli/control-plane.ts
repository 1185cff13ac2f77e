// `kubeloop control-plane start|build`: the local control plane for kubectl and for tests.
import { parseArgs } from "node:util";
import { startControlPlane } from "../testing/control-plane/control-plane.js";
import { ensureControlPlaneBinary } from "../testing/control-plane/binaries.js";

const progress = (message: string) => process.stderr.write(`kubeloop: ${message}\n`);

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { "data-dir": { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  const [sub] = positionals;
  if (sub === "build") {
    const binary = await ensureControlPlaneBinary({ env, onProgress: progress });
    process.stdout.write(`${binary}\n`);
    return 0;
  }
  if (sub !== "start") {
    process.stderr.write("usage: kubeloop control-plane start [--data-dir DIR] | build\n");
    return 2;
  }
  const cp = await startControlPlane({
    kubeconfig: false,
    env,
    onProgress: progress,
    ...(values["data-dir"] ? { dataDir: values["data-dir"] } : {}),
  });
  process.stdout.write(`KUBECONFIG=${cp.kubeconfigPath}\n`);
  progress(`try: kubectl --kubeconfig ${cp.kubeconfigPath} get namespaces`);
  progress(`logs in ${cp.dataDir}/logs; press Ctrl-C to stop`);

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    progress(`${signal}: stopping the control plane`);
    void cp.stop();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const error = await cp.ended;
  if (error) {
    progress(error.message);
    return 1;
  }
  return 0;
}

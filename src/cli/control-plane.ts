// `kubeloop control-plane start|build`: the local control plane for kubectl and for tests.
import { startControlPlane } from "../testing/control-plane/control-plane.js";
import { ensureControlPlaneBinary } from "../testing/control-plane/binaries.js";
import { MAX_NODES, nodesFlag } from "../testing/control-plane/nodes.js";
import { parseArgs } from "node:util";
import { parsed, UsageError } from "./args.js";
import { buildReporting } from "./progress.js";

const USAGE = "usage: kubeloop control-plane start [--data-dir DIR] [--nodes N] | build";
const HELP = `  start       etcd, kube-apiserver and kube-controller-manager on loopback; prints KUBECONFIG=... and runs until Ctrl-C
    --data-dir DIR   keep the data, certificates and ports there (a later start finds the same objects at the same address)
    --nodes N        N simulated nodes (KWOK) with kube-scheduler and the workload controllers: Pods are scheduled and become Ready (0 to ${MAX_NODES}; default 0)
  build       build (or find in the cache) the control plane binary; prints its path`;

// On a terminal, the first build's progress is one line redrawn in place; messages clear it first.
const reporting = buildReporting(process.stderr, (message) => process.stderr.write(`kubeloop: ${message}\n`));
const progress = reporting.onProgress;

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parsed(() =>
    parseArgs({ args, options: { "data-dir": { type: "string" }, nodes: { type: "string" }, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true }),
  );
  const [sub, ...extra] = positionals;
  if (values.help) {
    process.stdout.write(`${USAGE}\n${HELP}\n`);
    return 0;
  }
  if (sub !== "start" && sub !== "build") throw new UsageError(sub === undefined ? "start or build?" : `unknown subcommand '${sub}': start or build`);
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (sub === "build") {
    if (values["data-dir"] !== undefined || values.nodes !== undefined) throw new UsageError("--data-dir and --nodes go with start");
    const binary = await ensureControlPlaneBinary({ env, ...reporting });
    process.stdout.write(`${binary}\n`);
    return 0;
  }
  const nodes = nodesFlag(values.nodes, 0);
  if (typeof nodes === "string") throw new UsageError(nodes);
  const cp = await startControlPlane({
    kubeconfig: false,
    env,
    ...reporting,
    ...(values["data-dir"] ? { dataDir: values["data-dir"] } : {}),
    nodes,
  });
  process.stdout.write(`KUBECONFIG=${cp.kubeconfigPath}\n`);
  progress(nodes > 0 ? `try: kubectl --kubeconfig ${cp.kubeconfigPath} create deployment web --image=nginx --replicas=3 && kubectl --kubeconfig ${cp.kubeconfigPath} get pods -o wide` : `try: kubectl --kubeconfig ${cp.kubeconfigPath} get namespaces`);
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

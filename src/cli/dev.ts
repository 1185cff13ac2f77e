// `kubeloop dev <operator.ts>`: the embedded default. Starts the local control plane (or uses
// --kubeconfig), then runs `kubeloop run --install-crds --standalone` on the file in a child
// process, restarting it whenever a file next to it changes; prints how to reach the cluster.
import { spawn, type ChildProcess } from "node:child_process";
import chokidar from "chokidar";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { parsed, UsageError } from "./args.js";
import { buildReporting } from "./progress.js";
import { startControlPlane, type ControlPlane } from "../testing/control-plane/control-plane.js";
import { Client } from "../client/client.js";
import { nodesFlag } from "../testing/control-plane/nodes.js";
import { packageRoot } from "../testing/package-root.js";
import { holdDevOverride } from "./dev-override.js";
import { loadOperator } from "./load.js";

/** Simulated nodes of `kubeloop dev`'s control plane unless --nodes says otherwise: a developer's cluster should behave like a cluster. */
export const DEV_NODES = 3;

export const USAGE = `usage: kubeloop dev <operator.ts> [--kubeconfig FILE] [--dev-namespace NS] [--data-dir DIR] [--nodes N] [-- run flags]

Starts a local Kubernetes control plane (unless --kubeconfig is given) with --nodes N simulated
nodes (default ${DEV_NODES}; 0 for none), where Deployments get Pods that are scheduled and become
Ready, installs the operator's
CRDs, runs the operator and restarts it when its files change. Ctrl-C stops everything.
With --kubeconfig, the operator of the same name running in that cluster is paused meanwhile
(as kubeloop run --dev); its Leases are found where the generated manifests put them (the
namespace holding the Lease <operator>-leader), or in --dev-namespace NS.
`;

const say = (m: string) => process.stderr.write(`kubeloop dev: ${m}\n`);

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const dash = args.indexOf("--");
  const own = dash < 0 ? args : args.slice(0, dash);
  const passOn = dash < 0 ? [] : args.slice(dash + 1);
  const { values, positionals } = parsed(() =>
    parseArgs({
      args: own,
      allowPositionals: true,
      strict: true,
      options: { kubeconfig: { type: "string" }, "dev-namespace": { type: "string" }, "data-dir": { type: "string" }, nodes: { type: "string" }, help: { type: "boolean", short: "h" } },
    }),
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [file, ...extra] = positionals;
  if (!file) throw new UsageError("which operator? kubeloop dev <operator.ts>");
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}' (flags for kubeloop run go after --)`);
  const path = resolve(file);
  // Before any slow work (a first start builds the control plane for minutes): the file is there.
  if (!existsSync(path)) throw new UsageError(`${file}: no such file`);
  const nodes = nodesFlag(values.nodes, DEV_NODES);
  if (typeof nodes === "string") throw new UsageError(nodes);
  if (values.nodes !== undefined && values.kubeconfig) throw new UsageError("--nodes goes without --kubeconfig: the nodes are the local control plane's");
  if (values["dev-namespace"] && !values.kubeconfig) throw new UsageError("--dev-namespace goes with --kubeconfig: on the local control plane there is no deployed operator to pause");

  let cp: ControlPlane | undefined;
  let kubeconfig = values.kubeconfig;
  if (!kubeconfig) {
    cp = await startControlPlane({
      kubeconfig: false,
      env,
      nodes,
      ...buildReporting(process.stderr, say), // the first build's progress line, on a terminal
      ...(values["data-dir"] ? { dataDir: values["data-dir"] } : {}),
    });
    kubeconfig = cp.kubeconfigPath;
  }
  // On a real cluster, the operator of the same name running there pauses while this runs (held
  // here, across the restarts of the child, so it never acts in between).
  const override = values.kubeconfig ? await pauseDeployed(path, values.kubeconfig, env, values["dev-namespace"]) : undefined;
  process.stdout.write(`KUBECONFIG=${kubeconfig}\n`);
  say(`play with it: kubectl --kubeconfig ${kubeconfig} get all,events -A`);

  // Free ports for the probes and webhooks (the operator logs their URLs): a dev loop must not
  // need 8080 or 9443, which another operator on the machine may hold. Flags after -- win.
  const ports = ["--metrics-bind", "127.0.0.1:0", "--webhook-bind", "127.0.0.1:0"];
  const child = new OperatorChild([join(packageRoot(), "bin", "kubeloop.mjs"), "run", path, "--kubeconfig", kubeconfig, "--install-crds", "--standalone", ...ports, ...passOn], env, file);
  child.start();
  const watcher = restartOnChange(dirname(path), child);
  await untilSignal();
  await watcher.close();
  await child.stop();
  await override?.release();
  await override?.client.close();
  await cp?.stop();
  say("stopped");
  return 0;
}

/** The operator, run as `kubeloop run` in a child process; restarted by {@link restartOnChange}. */
class OperatorChild {
  private child: ChildProcess | undefined;
  /** Bumped on every start and stop: an exit that belongs to an older generation was expected. */
  private generation = 0;
  stopping = false;

  constructor(
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly file: string,
  ) {}

  start(): void {
    const mine = ++this.generation;
    // The IPC channel is the child's lifeline: it closes when this process dies, however it dies,
    // and the child then exits at once (run.ts stopWithParent).
    const child = spawn(process.execPath, this.args, { env: this.env, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child = child;
    child.on("exit", (code, signal) => {
      if (this.stopping || mine !== this.generation) return;
      say(`operator exited (${signal ?? `code ${code}`}); waiting for a change to ${this.file} to restart it`);
    });
  }

  /** SIGTERM, then SIGKILL after 10 s; resolves once it exited. */
  async stop(): Promise<void> {
    const c = this.child;
    this.generation++; // its exit is expected: not reported
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill("SIGTERM");
    const timer = setTimeout(() => c.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * Restarts `child` 300 ms after the last change of a file under `dir` (node_modules and .git
 * aside). chokidar watches the directories, not the files' inodes, so an editor's atomic save
 * (write a temporary file, rename it over the original: vim, JetBrains, `sed -i`) is a change
 * like any other, and every later one is seen too; `fs.watch` lost the file after the first
 * rename, and its recursive mode held a watch per directory of node_modules.
 */
function restartOnChange(dir: string, child: OperatorChild): { close(): Promise<void> } {
  let debounce: NodeJS.Timeout | undefined;
  const watcher = chokidar.watch(dir, {
    ignoreInitial: true,
    ignored: (path) => /(^|[\\/])(node_modules|\.git)([\\/]|$)/.test(relative(dir, path)),
  });
  watcher.on("all", (_event, path) => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      say(`${relative(dir, path) || path} changed: restarting the operator`);
      void child.stop().then(() => {
        if (!child.stopping) child.start();
      });
    }, 300);
  });
  watcher.on("error", (error) => say(`watching ${dir} failed: ${error instanceof Error ? error.message : String(error)}`));
  return {
    async close() {
      child.stopping = true;
      clearTimeout(debounce);
      await watcher.close();
    },
  };
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      say(`${sig}: stopping`);
      resolve();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

/** Holds the dev override for the operator in `path` on the cluster of `kubeconfig`. */
async function pauseDeployed(path: string, kubeconfig: string, env: NodeJS.ProcessEnv, namespace: string | undefined): Promise<{ release: () => Promise<void>; client: Client }> {
  const { operator } = await loadOperator(path);
  const client = await Client.load({ path: kubeconfig, env, rateLimit: false });
  try {
    const held = await holdDevOverride(operator, client, { log: say, ...(namespace ? { namespace } : {}) });
    return { release: () => held.release(), client };
  } catch (error) {
    await client.close();
    throw error;
  }
}

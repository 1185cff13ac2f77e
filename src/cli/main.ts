// The kubeloop command line. Reads the environment and argv, and passes them on explicitly.
import * as controlPlane from "./control-plane.js";
import * as dev from "./dev.js";
import * as generate from "./generate.js";
import * as init from "./init.js";
import * as pause from "./pause.js";
import * as runCommand from "./run.js";
import * as shards from "./shards.js";
import { UsageError } from "./args.js";
import { VERSION } from "../core/version.js";

const USAGE = `usage: kubeloop <command> [flags]   (kubeloop <command> --help for its flags)

commands:
  run <operator.ts>                      run an operator against the current kubeconfig
  dev <operator.ts>                      local control plane + CRDs + the operator, restarted on changes
  pause <name> [--for 1h]                the operator of that name in the cluster stops acting until resumed (or the time passed)
  resume <name>                          ends a pause made by kubeloop pause
  shards <name>                          which replica of a sharded operator claims which buckets
  init <dir>                             a new operator project (operator, test, package.json)
  generate <part> <operator.ts>          rbac, crds, deploy, webhooks or all: manifests from the operator's code
  generate types <crd.yaml | group/Kind> TypeScript types and a kind descriptor for CRDs defined elsewhere
  control-plane start [--data-dir DIR] [--nodes N]
                                         start a local Kubernetes control plane (N simulated nodes); prints KUBECONFIG=...
  control-plane build                    build (or find in the cache) the control plane binary
  --version, -v                          print kubeloop's version
  --help, -h                             this text

exit codes: 0 done; 1 failed (the message says why); 2 a usage mistake (an unknown option, a missing argument)
`;

/** Each command; its usage mistakes are thrown as UsageError. */
const COMMANDS: Record<string, (rest: string[]) => Promise<number>> = {
  "control-plane": (rest) => controlPlane.run(rest, process.env),
  run: (rest) => runCommand.run(rest, process.env, shutdown),
  dev: (rest) => dev.run(rest, process.env),
  init: (rest) => init.run(rest),
  pause: (rest) => pause.run("pause", rest, process.env),
  resume: (rest) => pause.run("resume", rest, process.env),
  generate: (rest) => generate.run(rest),
  shards: (rest) => shards.run(rest, process.env),
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      process.stderr.write(USAGE);
      return 2;
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return 0;
    case "version":
    case "--version":
    case "-v":
      process.stdout.write(`${VERSION}\n`);
      return 0;
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!run) {
    process.stderr.write(`kubeloop: unknown command '${command}' (kubeloop --help lists the commands)\n`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`kubeloop ${command}: ${error.message} (kubeloop ${command} --help shows the usage)\n`);
    return 2;
  }
}

// `kubeloop run` exits as soon as the operator has failed (a lost Lease, above all: work that
// ignored its aborted signal must not keep a replica that lost its Lease alive and acting).
// After a graceful stop it lets work the operator's hooks started (background tasks a cleanup
// handler asked to stop) end by themselves, until what is left of the graceful-shutdown budget:
// the timer does not keep the process alive, so it exits as soon as nothing else runs, and at the
// deadline at the latest. Other commands end when their work is done.
const exitNow = process.argv[2] === "run";
const shutdown: runCommand.Shutdown = { drainUntil: 0 };
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    if (!exitNow) return;
    const drainMs = code === 0 ? shutdown.drainUntil - Date.now() : 0;
    if (drainMs <= 0) process.exit(code);
    setTimeout(() => {
      process.stderr.write(`kubeloop: work started by the operator's hooks still ran at the shutdown deadline (${Math.round(drainMs)} ms after the operator stopped): exiting\n`);
      process.exit(code);
    }, drainMs).unref();
  },
  (error: unknown) => {
    process.stderr.write(`kubeloop: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
    if (exitNow) process.exit(1);
  },
);

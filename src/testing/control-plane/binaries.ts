// Where the control plane's executables come from: prebuilt envtest assets when the user
// points at them, otherwise our own multi-call binary built from controlplane/ (upstream
// Kubernetes and etcd as Go modules) and cached outside the repository, keyed by a hash of
// the Go sources and toolchain, so only a change of those rebuilds it.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, promises as fs } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { packageRoot } from "../package-root.js";
import { ControlPlaneError } from "./errors.js";
import { releasePidLock, tryPidLock } from "./pid-lock.js";
import { isAlive } from "./supervisor.js";

/** The executables one control plane runs. `argv0` is prepended to a component's flags. */
export interface Executables {
  etcd: Command;
  kubeApiserver: Command;
  /** Absent when prebuilt assets carry no kube-controller-manager. */
  kubeControllerManager?: Command;
  /** kube-scheduler and KWOK's controller (simulated nodes): kubeloop's own binary only. */
  kubeScheduler?: Command;
  kwok?: Command;
  /** Where they came from, for messages. */
  origin: string;
}

/** A program and the leading arguments that select a component of a multi-call binary. */
export interface Command {
  file: string;
  args: readonly string[];
}

/** Options for {@link ensureControlPlaneBinary}. */
export interface BuildOptions {
  /** Directory holding main.go, go.mod and go.sum. Default: the package's own controlplane/. */
  sourceDir?: string;
  /** Cache root. Default: `$XDG_CACHE_HOME/kubeloop` or `~/.cache/kubeloop`. */
  cacheDir?: string;
  /** The go command. Default: `go` on PATH. */
  go?: string;
  /** Called with human-readable progress lines during a build. */
  onProgress?: (message: string) => void;
  /**
   * Called as each Go package of a build is compiled: how many of the packages the build needs
   * (those not in Go's build cache) are done, the one being compiled, and a rough time left.
   * For a live display (`kubeloop control-plane build` and `dev` draw one on a terminal).
   */
  onBuildProgress?: (progress: BuildProgress) => void;
  /** Environment for the go command. Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Where a control plane build stands (see {@link BuildOptions.onBuildProgress}). */
export interface BuildProgress {
  /** Packages compiled so far. */
  compiled: number;
  /** Packages the build compiles: those Go's build cache lacks (`go list -deps`, `.Stale`). */
  total: number;
  /** The package compiled last (`go build -v` names each as it goes). */
  current: string;
  elapsedMs: number;
  /** Time left at the rate so far, once there is a rate to go by (a tenth done, or 10 s in). */
  remainingMs: number | undefined;
}

/** The controlplane/ directory shipped with this package. */
export function packagedSourceDir(): string {
  return join(packageRoot(), "controlplane");
}

/** The default cache root, derived from an environment (not read from process.env here). */
export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  if (env.KUBELOOP_CACHE_DIR) return resolve(env.KUBELOOP_CACHE_DIR);
  const base = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), ".cache");
  return join(base, "kubeloop");
}

/** Executables from a directory of prebuilt binaries (KUBEBUILDER_ASSETS layout). */
export function prebuiltExecutables(dir: string): Executables {
  const etcd = join(dir, "etcd");
  const apiserver = join(dir, "kube-apiserver");
  for (const file of [etcd, apiserver]) {
    if (!existsSync(file)) {
      throw new ControlPlaneError("BadOptions", `prebuilt control plane assets in ${dir}: ${file} does not exist`);
    }
  }
  const kcm = join(dir, "kube-controller-manager");
  return {
    etcd: { file: etcd, args: [] },
    kubeApiserver: { file: apiserver, args: [] },
    ...(existsSync(kcm) ? { kubeControllerManager: { file: kcm, args: [] } } : {}),
    origin: `prebuilt assets in ${dir}`,
  };
}

/** Executables from our multi-call binary. */
export function multiCallExecutables(binary: string): Executables {
  return {
    etcd: { file: binary, args: ["etcd"] },
    kubeApiserver: { file: binary, args: ["kube-apiserver"] },
    kubeControllerManager: { file: binary, args: ["kube-controller-manager"] },
    kubeScheduler: { file: binary, args: ["kube-scheduler"] },
    kwok: { file: binary, args: ["kwok"] },
    origin: binary,
  };
}

/** The Kubernetes release a controlplane go.mod pins, e.g. `v1.37.1`; undefined if none. */
export async function pinnedKubernetesVersion(sourceDir = packagedSourceDir()): Promise<string | undefined> {
  let gomod: string;
  try {
    gomod = await fs.readFile(join(sourceDir, "go.mod"), "utf8");
  } catch (error) {
    throw new ControlPlaneError("BuildFailed", `cannot read ${join(sourceDir, "go.mod")}`, { cause: error });
  }
  return gomod.match(/^\s*k8s\.io\/kubernetes (v\d+\.\d+\.\d+)/m)?.[1];
}

/**
 * Returns the path of the multi-call control plane binary, building it first if the cache has
 * none for the current sources and toolchain.
 *
 * Guarantees: a returned path is a complete binary (builds go to a temporary name and are
 * renamed into place); concurrent callers on one machine build at most once (a lock file).
 * Fails with `GoNotFound` when there is no Go toolchain, `BuildFailed` with the compiler's last
 * lines when the build fails.
 */
export async function ensureControlPlaneBinary(options: BuildOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  const sourceDir = options.sourceDir ?? packagedSourceDir();
  const go = options.go ?? "go";
  const progress = options.onProgress ?? (() => {});
  const toolchain = await goToolchain(go, env);
  const kubernetesVersion = await pinnedKubernetesVersion(sourceDir);
  const ldflags = versionLdflags(kubernetesVersion);
  const key = await sourceKey(sourceDir, `${toolchain}\n${ldflags}`);
  const dir = join(options.cacheDir ?? defaultCacheDir(env), "controlplane", key);
  const binary = join(dir, "kubeloop-controlplane");
  if (existsSync(binary)) return binary;

  await fs.mkdir(dir, { recursive: true });
  const lock = `${dir}.lock`;
  while (!(await tryPidLock(lock)).acquired) {
    progress(`waiting for another process building the control plane (${lock})`);
    await waitForUnlock(lock);
    if (existsSync(binary)) return binary;
  }
  try {
    if (existsSync(binary)) return binary;
    progress(
      `building the local control plane: Kubernetes ${kubernetesVersion ?? "(unpinned)"} from Go modules ` +
        `(${toolchain}); the first build takes several minutes, later runs reuse ${binary}`,
    );
    const started = Date.now();
    const temporary = `${binary}.${process.pid}.tmp`;
    const goEnv = { ...env, CGO_ENABLED: "0" };
    // What the build will compile: the packages whose cached build is stale (listing them takes
    // seconds; the build, minutes). Asked only when someone draws the progress.
    const onBuild = options.onBuildProgress;
    const total = onBuild ? (await capture(go, ["list", "-trimpath", "-deps", "-f", "{{if .Stale}}{{.ImportPath}}{{end}}", "."], goEnv, sourceDir)).split("\n").filter(Boolean).length : 0;
    let compiled = 0;
    await runGo(go, ["build", "-trimpath", ...(onBuild ? ["-v"] : []), "-ldflags", ldflags, "-o", temporary, "."], {
      cwd: sourceDir,
      env: goEnv,
      onTick: (seconds) => progress(`still building the control plane (${seconds} s${onBuild ? `, ${compiled} of ${total} packages` : ""})`),
      onLine: (line) => {
        // -v names each package as it is compiled; anything else (a compiler's error) is not one.
        if (!onBuild || !/^[\w.\-~/]+$/.test(line)) return;
        compiled += 1;
        const elapsedMs = Date.now() - started;
        const left = Math.max(0, total - compiled);
        const rateKnown = compiled >= total / 10 || elapsedMs >= 10_000;
        onBuild({ compiled, total: Math.max(total, compiled), current: line, elapsedMs, remainingMs: left === 0 ? 0 : rateKnown ? Math.round((elapsedMs / compiled) * left) : undefined });
      },
    });
    await fs.rename(temporary, binary);
    const seconds = Math.round((Date.now() - started) / 1000);
    await fs.writeFile(
      join(dir, "build.json"),
      JSON.stringify({ kubernetesVersion, toolchain, seconds, builtAt: new Date().toISOString() }, null, 2),
    );
    progress(`control plane built in ${seconds} s`);
    return binary;
  } finally {
    await releasePidLock(lock);
  }
}

/** `-ldflags` stamping the release into /version, as upstream's hack/lib/version.sh does. */
function versionLdflags(version: string | undefined): string {
  if (!version) return "-s -w";
  const [major, minor] = version.replace(/^v/, "").split(".");
  const vars = { gitVersion: version, gitMajor: major, gitMinor: minor, gitTreeState: "clean" };
  const flags = ["-s", "-w"];
  for (const pkg of ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"]) {
    for (const [name, value] of Object.entries(vars)) flags.push(`-X ${pkg}.${name}=${value}`);
  }
  return flags.join(" ");
}

async function goToolchain(go: string, env: NodeJS.ProcessEnv): Promise<string> {
  try {
    const out = await capture(go, ["env", "GOVERSION", "GOOS", "GOARCH"], env);
    return out.trim().split(/\s+/).join(" ");
  } catch (error) {
    throw new ControlPlaneError(
      "GoNotFound",
      `the local control plane is built from source and needs a Go toolchain (>= 1.26), but '${go} env' failed; ` +
        "install Go, or point KUBEBUILDER_ASSETS at prebuilt etcd and kube-apiserver binaries",
      { cause: error },
    );
  }
}

/** A short hash of the Go sources (go.mod, go.sum, *.go) and of how they are built. */
async function sourceKey(sourceDir: string, buildIdentity: string): Promise<string> {
  let names: string[];
  try {
    // The Go sources and the files they embed (KWOK stages under kwok-stages/).
    const top = (await fs.readdir(sourceDir)).filter((n) => n === "go.mod" || n === "go.sum" || n.endsWith(".go"));
    const stages = existsSync(join(sourceDir, "kwok-stages")) ? (await fs.readdir(join(sourceDir, "kwok-stages"))).filter((n) => n.endsWith(".yaml")).map((n) => `kwok-stages/${n}`) : [];
    names = [...top, ...stages].sort();
  } catch (error) {
    throw new ControlPlaneError("BuildFailed", `cannot read the control plane sources in ${sourceDir}`, { cause: error });
  }
  if (!names.includes("go.mod")) throw new ControlPlaneError("BuildFailed", `${sourceDir} has no go.mod`);
  const hash = createHash("sha256").update(buildIdentity);
  for (const name of names) hash.update(`\0${name}\0`).update(await fs.readFile(join(sourceDir, name)));
  return hash.digest("hex").slice(0, 16);
}

async function waitForUnlock(lock: string): Promise<void> {
  while (existsSync(lock)) {
    const owner = Number(await fs.readFile(lock, "utf8").catch(() => ""));
    if (!owner || !isAlive(owner)) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function capture(file: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { env, stdio: ["ignore", "pipe", "pipe"], ...(cwd ? { cwd } : {}) });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    // 'close', not 'exit': only then has all of stdout been read. (Resolving on 'exit' truncated
    // `go env` now and then, which gave concurrent callers different cache keys.)
    child.on("close", (code) => (code === 0 ? resolvePromise(out) : reject(new Error(`${file} exited ${code}`))));
  });
}

function runGo(
  go: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; onTick: (seconds: number) => void; onLine?: (line: string) => void },
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const started = Date.now();
    const child = spawn(go, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    const tail: string[] = [];
    const take = (lines: string[]) => {
      for (const line of lines) opts.onLine?.(line);
      tail.push(...lines);
      tail.splice(0, Math.max(0, tail.length - 40));
    };
    // Whole lines of each stream, the last partial one kept until its newline (or the end).
    const keep = (stream: NodeJS.ReadableStream) => {
      let partial = "";
      stream.on("data", (d: Buffer) => {
        const lines = (partial + d.toString()).split("\n");
        partial = lines.pop() ?? "";
        take(lines.filter(Boolean));
      });
      stream.on("end", () => partial && take([partial]));
    };
    keep(child.stdout);
    keep(child.stderr);
    const ticker = setInterval(() => opts.onTick(Math.round((Date.now() - started) / 1000)), 30_000);
    const finish = (error?: Error) => {
      clearInterval(ticker);
      if (error) reject(error);
      else resolvePromise();
    };
    child.on("error", (error) => finish(new ControlPlaneError("BuildFailed", `cannot run ${go}`, { cause: error })));
    child.on("close", (code, signal) => {
      if (code === 0) return finish();
      finish(
        new ControlPlaneError(
          "BuildFailed",
          `go ${args.join(" ")} in ${opts.cwd} failed (${signal ?? `exit ${code}`})`,
          { logTail: tail },
        ),
      );
    });
  });
}

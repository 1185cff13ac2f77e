// Runs the control plane's child processes: keeps each one's last log lines, reports an
// unexpected exit, stops them in order, and makes sure none outlives its parent.
//
// Node cannot ask the kernel to signal a child when the parent dies (prctl PDEATHSIG needs
// native code, and prebuilt envtest binaries are not ours to change). Instead a small
// detached "reaper" process holds a pipe from us; when the pipe closes, because we stopped
// normally or were killed outright, it terminates every child it was told about.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { ControlPlaneError } from "./errors.js";

const TAIL_LINES = 60;

/** Whether a process exists (EPERM: it exists but is not ours to signal). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** How a component ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One running child process of the control plane. */
export class Component {
  readonly name: string;
  readonly pid: number;
  /** Resolves when the process has exited, for whatever reason. */
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;
  private readonly tail: string[] = [];
  private readonly log: WriteStream | undefined;
  private exit: Exit | undefined;

  constructor(
    name: string,
    private readonly file: string,
    private readonly args: readonly string[],
    private readonly options: { logFile?: string; env?: NodeJS.ProcessEnv },
  ) {
    this.name = name;
    this.log = options.logFile ? createWriteStream(options.logFile, { flags: "a" }) : undefined;
    this.child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env });
    this.exited = new Promise<Exit>((resolve) => {
      this.child.on("exit", (code, signal) => {
        const exit = { code, signal };
        // Report the exit once its last output is read ('close'), so the log tail holds the
        // lines that explain it; bounded, in case something else keeps the pipes open.
        const timer = setTimeout(() => finish(), 1_000);
        const finish = () => {
          clearTimeout(timer);
          this.exit ??= exit;
          resolve(this.exit);
        };
        this.child.once("close", finish);
      });
      this.child.on("error", (error) => {
        this.record(`failed to start ${file}: ${error.message}`);
        this.exit = { code: -1, signal: null };
        resolve(this.exit);
      });
    });
    if (this.child.pid === undefined) {
      // spawn() reports ENOENT and friends asynchronously through 'error'.
      this.pid = -1;
    } else {
      this.pid = this.child.pid;
    }
    let partial = { stdout: "", stderr: "" };
    for (const stream of ["stdout", "stderr"] as const) {
      this.child[stream]?.on("data", (data: Buffer) => {
        this.log?.write(data);
        const text = partial[stream] + data.toString();
        const lines = text.split("\n");
        partial = { ...partial, [stream]: lines.pop() ?? "" };
        for (const line of lines) this.record(line);
      });
    }
  }

  /** A new process of the same program with the same arguments (after this one exited). */
  respawn(): Component {
    return new Component(this.name, this.file, this.args, this.options);
  }

  /** Sends `signal` to the process (no-op once it exited). */
  kill(signal: NodeJS.Signals): void {
    if (!this.exit) this.child.kill(signal);
  }

  /** The last lines the component printed (stdout and stderr interleaved). */
  logTail(): string[] {
    return [...this.tail];
  }

  /** Whether the process has exited. */
  get hasExited(): boolean {
    return this.exit !== undefined;
  }

  /** A rejection naming this component, for when it exits unexpectedly. */
  async failOnExit(): Promise<never> {
    const exit = await this.exited;
    throw new ControlPlaneError(
      "ComponentExited",
      `${this.name} exited (${exit.signal ?? `code ${exit.code}`})`,
      { component: this.name, logTail: this.logTail() },
    );
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs: number): Promise<void> {
    if (this.exit) return this.closeLog();
    this.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    await this.exited;
    await this.closeLog();
  }

  private record(line: string): void {
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
  }

  private closeLog(): Promise<void> {
    return new Promise((resolve) => (this.log ? this.log.end(resolve) : resolve()));
  }
}

// The reaper's whole program. It reads "+pid" / "-pid" lines, and "!dir" for a temporary
// directory; when its stdin closes it sends SIGTERM to every pid still listed, waits up to 10 s,
// SIGKILLs what is left, then removes the directories (a parent killed with SIGKILL leaves no
// 100 MB etcd data dir behind). It ignores the signals a terminal or a test runner sends to our
// process group: it lives in its own session.
const REAPER = `
const pids = new Set();
const dirs = new Set();
let buffer = "";
for (const s of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(s, () => {});
const alive = (p) => { try { process.kill(p, 0); return true; } catch (e) { return e.code === "EPERM"; } };
const signal = (p, s) => { try { process.kill(p, s); } catch {} };
process.stdin.on("data", (d) => {
  buffer += d;
  let i;
  while ((i = buffer.indexOf("\\n")) >= 0) {
    const line = buffer.slice(0, i); buffer = buffer.slice(i + 1);
    if (line[0] === "!") { dirs.add(line.slice(1)); continue; }
    const pid = Number(line.slice(1));
    if (line[0] === "+") pids.add(pid); else pids.delete(pid);
  }
});
let reaping = false;
const reap = () => {
  if (reaping) return; reaping = true;
  const deadline = Date.now() + 10000;
  const done = () => {
    for (const d of dirs) { try { require("node:fs").rmSync(d, { recursive: true, force: true }); } catch {} }
    process.exit(0);
  };
  const check = () => {
    const left = [...pids].filter(alive);
    if (left.length === 0) return done();
    if (Date.now() > deadline) {
      for (const p of left) signal(p, "SIGKILL");
      setTimeout(done, 200); // let the kernel take them before their files go
    }
  };
  for (const p of pids) signal(p, "SIGTERM");
  check();
  setInterval(check, 100);
};
process.stdin.on("end", reap);
process.stdin.on("error", reap);
`;

/** Ends registered child processes when this process dies, however it dies. */
export class Reaper {
  private readonly child: ChildProcess;

  constructor() {
    this.child = spawn(process.execPath, ["-e", REAPER], { detached: true, stdio: ["pipe", "ignore", "ignore"] });
    // Neither the reaper nor its pipe may keep our event loop alive.
    this.child.unref();
    // A pipe's socket has unref() at run time; the Writable type does not declare it.
    (this.child.stdin as unknown as { unref?: () => void }).unref?.();
  }

  /** The reaper's own pid (tests check it is gone too). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  watch(pid: number): void {
    if (pid > 0) this.child.stdin?.write(`+${pid}\n`);
  }

  forget(pid: number): void {
    if (pid > 0) this.child.stdin?.write(`-${pid}\n`);
  }

  /** Removes `dir` (recursively) once the registered processes have ended. */
  removeAfter(dir: string): void {
    if (!dir.includes("\n")) this.child.stdin?.write(`!${dir}\n`);
  }

  /** Closes the pipe: the reaper ends whatever is still registered, then exits. Resolves on its exit. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    this.child.stdin?.end();
    let timer: NodeJS.Timeout | undefined;
    // Bounded: the reaper needs at most its own 10 s grace; never hang a caller's stop().
    await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, 15_000)))]);
    clearTimeout(timer);
  }
}

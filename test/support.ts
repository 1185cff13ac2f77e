// Helpers shared by tests that run without an API server (unit tests beside the code use them
// too): a client that reaches nothing, a local server that answers watches with scripted lines,
// a wait on a condition with a deadline, and a child process whose stdout lines are collected.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Client } from "../src/client/client.js";

/** A client that reaches nothing: for controllers and handlers that never call the server in a test. */
export function offlineClient(): Client {
  return new Client({ server: "https://127.0.0.1:1", source: "test", namespace: "default", tls: { insecureSkipVerify: true }, auth: { type: "none" } }, { rateLimit: false, retries: 0 });
}

/** One line of a ConfigMap watch in namespace "ns" (`data.rv` carries the resourceVersion too). */
export function watchLine(type: string, name: string, rv: number, annotations?: Record<string, string>): string {
  const metadata = { name, namespace: "ns", resourceVersion: String(rv), ...(annotations ? { annotations } : {}) };
  return `${JSON.stringify({ type, object: { apiVersion: "v1", kind: "ConfigMap", metadata, data: { rv: String(rv) } } })}\n`;
}

/**
 * A plain-HTTP server on 127.0.0.1 whose `respond` answers each request (it gets the request's
 * number, from 1), and a client of it in namespace "ns" without a rate limit. `close()` closes both.
 */
export async function localWatchServer(respond: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<{ client: Client; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    requests.push(req.url ?? "");
    respond(req, res, requests.length);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const client = new Client({ server: `http://127.0.0.1:${port}`, source: "test", namespace: "ns", tls: { insecureSkipVerify: false }, auth: { type: "none" } }, { rateLimit: false });
  return {
    client,
    requests,
    close: async () => {
      await client.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Polls a synchronous condition every 2 ms; throws at the deadline. */
export async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * Runs a full garbage collection now (as if under memory pressure): for tests of what must not
 * depend on GC timing, e.g. a deadline that a collected timer signal would lose.
 */
export async function collectGarbage(): Promise<void> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  // Twice, a turn apart: a WeakRef read in this turn keeps its target alive until the turn ends.
  for (let i = 0; i < 2; i++) {
    await new Promise((r) => setTimeout(r, 1));
    gc();
  }
}

/** Settles like `work`, or rejects naming `what` after `ms` (a test's own deadline, shorter than its timeout, so it can say what hung). */
export async function settleWithin<R>(what: string, work: Promise<R>, ms: number): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A child process running a TypeScript file through tsx, with its stdout as lines and the tail of its stderr. */
export interface Spawned {
  process: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
  stderr: () => string;
}

/** Runs `node --import tsx file ...args`; `onLine` sees each stdout line as it arrives. */
export function spawnTs(file: string, args: string[], onLine: (line: string) => void = () => {}, options: { env?: NodeJS.ProcessEnv } = {}): Spawned {
  const child = spawn(process.execPath, ["--import", "tsx", file, ...args], { stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env });
  const lines: string[] = [];
  let buffer = "";
  child.stdout?.on("data", (d: Buffer) => {
    buffer += d.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop() ?? "";
    for (const line of parts) {
      lines.push(line);
      onLine(line);
    }
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { process: child, lines, exited, stderr: () => stderr };
}

/** A `kubeloop` CLI process (bin/kubeloop.mjs) with its stdout and stderr as one text. */
export interface CliRun {
  out: () => string;
  exited: Promise<number | null>;
  /** Sends `signal` unless the process has already exited. */
  kill: (signal: NodeJS.Signals) => void;
}

/** Runs `kubeloop ...args` from the repository root. */
export function spawnKubeloop(args: string[], env: NodeJS.ProcessEnv = process.env): CliRun {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const child = spawn(process.execPath, [join(root, "bin", "kubeloop.mjs"), ...args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  child.stdout?.on("data", (d: Buffer) => (text += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { out: () => text, exited, kill: (s) => void (child.exitCode === null && child.signalCode === null && child.kill(s)) };
}

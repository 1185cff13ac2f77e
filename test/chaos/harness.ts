// The chaos harness shared by test/chaos.test.ts (short mode, in `npm test`) and scripts/chaos.ts
// (`npm run chaos`: long mode and soak). One operator process (test/fixtures/chaos-operator.ts)
// handles Items while a driver creates, changes and deletes them, and faults are injected in
// turn: the operator killed or stopped, the API server or etcd killed and restarted, connections
// cut, streams hung, 429/503 storms with Retry-After, slow responses. The operator reaches the
// server through an HTTP fault proxy and a TCP fault proxy:
//   operator → HttpFaultProxy (plain HTTP) → FaultProxy (TLS passed through) → kube-apiserver.
// Afterwards everything is healed and the harness waits for the final state, then checks it
// against the operator's journal: every object handled, every create handler's success kept
// once (a repeat only where the process was SIGKILLed between the handler's end and the record),
// the last change of every object handled, every deleted object gone with its delete handler run.
// CHAOS_DEBUG_DIR=<dir> keeps what a failure needs, in <dir>/<namespace>/: operator.log (every
// operator process, at debug level), timeline.jsonl (faults and the driver's deletes), journal,
// requests.jsonl (every request through the HTTP fault proxy).
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client, CustomResourceDefinition, Namespace, NotFoundError, Type, defineResource, type KubeObject } from "../../src/entries/index.js";
import { watch } from "../../src/entries/runtime.js";
import { FaultProxy, HttpFaultProxy, installCrd, type ControlPlane } from "../../src/entries/testing.js";
import { spawnTs, type Spawned } from "../support.js";

export const FAULTS = ["operator-sigkill", "operator-sigterm", "apiserver-restart", "etcd-restart", "connections-cut", "stream-hang", "429-storm", "503-storm", "slow-responses"] as const;
export type FaultKind = (typeof FAULTS)[number];

export interface ChaosPlan {
  /** A control plane this process started (restarts need its processes). */
  cp: ControlPlane;
  /** Items created at the start. */
  objects: number;
  /** Driver changes per second (70 % a spec change, 30 % a delete plus a create). */
  churnPerSecond: number;
  /** How long the churn lasts at least (it lasts until every fault was injected once). */
  durationMs: number;
  /** Inject exactly this many faults (the churn lasts until they are done), instead of as many as durationMs holds. */
  faultCount?: number;
  /** Injected in this order, cycling. */
  faults: readonly FaultKind[];
  faultEveryMs: number;
  /** How long a storm, hang, slow period or component outage lasts. */
  faultLengthMs: number;
  /** The operator's client rate limit (qps; 0: none). */
  qps: number;
  /** Deadline for the final state after the churn. */
  convergeTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface ChaosReport {
  injected: Partial<Record<FaultKind, number>>;
  driver: { creates: number; updates: number; deletes: number; errors: number };
  /** Items at the end. */
  live: number;
  /** Create handler runs that finished (journal). */
  createRuns: number;
  /** Repeated create successes explained by a SIGKILL between the handler's end and the record. */
  repeatsAfterKill: number;
  /** Repeats that nothing explains (must be 0). */
  unexplainedRepeats: string[];
  /** Live objects whose status.made is not the last finished run (a run after the recorded success, or none). */
  notKept: string[];
  /** Live objects whose last handled change is not their final spec. */
  lastChangeMissed: string[];
  /** Deleted objects (that a create handler saw) without a delete handler run, that nothing explains (must be none). */
  deleteHandlerMissed: string[];
  /**
   * Objects the API server removed while they carried the operator's finalizer and no
   * deletionTimestamp (a DELETE that raced the PATCH adding it, kubernetes/kubernetes#77988), as
   * the harness's own watch saw their last state. Their delete handlers can only run in the
   * process that saw them go (nothing of them is left in the cluster).
   */
  vanished: number;
  /**
   * Of those, the ones whose delete handlers never ran because that process (the one that ran
   * their create handler and added the finalizer) was SIGKILLed within {@link VANISH_KILL_MS} of
   * the removal: explained, as a repeat after a SIGKILL is. Longer than that is a finding.
   */
  vanishedLostToKill: string[];
  /** Deleted objects still present (a stale finalizer). */
  notGone: string[];
  /** How long the churn lasted. */
  churnMs: number;
  /** From the end of the churn to the final state. */
  convergeMs: number;
  /** The highest number of requests in one second during 429/503 storms, and the storms' mean rate. */
  stormRate: { maxPerSecond: number; meanPerSecond: number };
  /** Operator samples, one a second: seconds since start, RSS bytes, per-object entries, process. */
  samples: { t: number; rss: number; tracked: number; pid: number }[];
  operatorStarts: number;
  /** The operator's lists of Items, paged or streaming (the first of each process, and every relist: after a 410, a restart), and the HTTP 410s it was answered (a 410 inside a watch stream is not counted). */
  lists: number;
  gone: number;
  /** Operator exits nobody asked for (must be none), with their stderr. */
  crashes: string[];
}

/** How soon after a vanish a SIGKILL explains its lost delete handlers (they run within milliseconds on an idle machine; generous for two loaded cores). */
export const VANISH_KILL_MS = 5_000;

const fixture = fileURLToPath(new URL("../fixtures/chaos-operator.ts", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs one chaos plan and returns what it found; throws only when the harness itself cannot proceed. */
export async function runChaos(plan: ChaosPlan): Promise<ChaosReport> {
  const log = plan.log ?? (() => {});
  const { cp } = plan;
  if (!cp.admin || !cp.caCertificate) throw new Error("runChaos needs a control plane it started");
  const dir = mkdtempSync(join(tmpdir(), "kubeloop-chaos-"));
  const journal = join(dir, "journal");
  const admin = await Client.load({ path: cp.kubeconfigPath, rateLimit: false });
  const tcp = await FaultProxy.start(cp.server);
  const http = await HttpFaultProxy.start({ server: tcp.url, ca: cp.caCertificate, certificate: cp.admin.certificate, key: cp.admin.key });
  const operatorConfig = http.writeKubeconfig(join(dir, "kubeconfig"));
  const group = `c${Date.now().toString(36)}.chaos.kubeloop.dev`;
  const Item = defineResource({ group, version: "v1", kind: "Item", spec: Type.Object({ value: Type.Integer() }), status: Type.Unknown() });
  const ns = `chaos-${Date.now().toString(36)}`;
  const debugDir = process.env.CHAOS_DEBUG_DIR ? join(process.env.CHAOS_DEBUG_DIR, ns) : undefined;
  if (debugDir) mkdirSync(debugDir, { recursive: true });
  // Kept in memory too: a failure's report says when its object was deleted and who was killed when.
  const events: { time: number; [key: string]: unknown }[] = [];
  const timeline = (entry: Record<string, unknown>) => {
    events.push({ time: Date.now(), ...entry });
    if (debugDir) appendFileSync(join(debugDir, "timeline.jsonl"), `${JSON.stringify({ time: Date.now(), ...entry })}\n`);
  };
  const debugEnv = debugDir ? { CHAOS_LOG: "debug", CHAOS_LOG_FILE: join(debugDir, "operator.log") } : {};
  const killed = new Set<number>();
  const terminated = new Set<number>();
  let operator: Spawned | undefined;
  const crashes: string[] = [];
  let starts = 0;
  let ending = false;
  let stopWatching = async () => new Map<string, number>();
  // An operator that exits on its own is a finding: recorded, and restarted (as a Deployment would).
  const startOperator = () => {
    starts++;
    const current = spawnTs(fixture, [operatorConfig, group, ns, journal], () => {}, { env: { ...process.env, CHAOS_QPS: String(plan.qps), ...debugEnv } });
    operator = current;
    timeline({ start: current.process.pid });
    void current.exited.then((code) => {
      if (stopping.has(current) || ending) return;
      crashes.push(`exit ${code}: ${current.stderr().slice(-1500)}`);
      startOperator();
    });
  };
  const stopping = new Set<Spawned>();
  const stopOperator = async (signal: "SIGKILL" | "SIGTERM") => {
    const current = operator;
    if (!current || current.process.exitCode !== null || current.process.signalCode !== null) return;
    stopping.add(current);
    if (current.process.pid) (signal === "SIGKILL" ? killed : terminated).add(current.process.pid);
    if (signal === "SIGKILL") timeline({ killed: current.process.pid });
    current.process.kill(signal);
    await current.exited;
  };

  try {
    await installCrd(admin, Item.crd);
    await admin.resource(Namespace).create({ metadata: { name: ns } });
    const items = admin.resource(Item).namespace(ns);
    const driver = { creates: 0, updates: 0, deletes: 0, errors: 0 };
    const live = new Map<string, number>(); // name → value the driver last set
    const deleted = new Set<string>(); // uids
    let serial = 0;
    const create = async () => {
      const name = `i-${serial++}`;
      try {
        await items.create({ metadata: { name }, spec: { value: 0 } });
        live.set(name, 0);
        driver.creates++;
      } catch {
        driver.errors++;
      }
    };
    await Promise.all(Array.from({ length: plan.objects }, create));
    // The harness's own watch, straight to the API server (not through the proxies): the last
    // state of each deleted Item, to tell the API server's race (#77988) from a lost deletion.
    const watching = new AbortController();
    const vanishes = new Map<string, number>(); // uid → when the harness saw it go with a finalizer and no deletionTimestamp
    const watched = (async () => {
      for await (const e of watch(items, { signal: watching.signal })) {
        if (e.type !== "delete" || e.finalStateUnknown || e.unshared) continue;
        const meta = e.object.metadata;
        if ((meta?.finalizers?.length ?? 0) > 0 && !meta?.deletionTimestamp) vanishes.set(meta?.uid ?? "", Date.now());
      }
    })().catch(() => {});
    stopWatching = async () => {
      watching.abort();
      await watched;
      return vanishes;
    };
    startOperator();

    // The churn, in the background, until durationMs passed and every fault was injected once.
    const started = Date.now();
    const churnEnd = started + plan.durationMs;
    let faultsDone = false;
    const churn = (async () => {
      while (Date.now() < churnEnd || !faultsDone) {
        await sleep(1000 / plan.churnPerSecond);
        const names = [...live.keys()];
        const name = names[Math.floor(Math.random() * names.length)];
        if (!name) {
          await create();
          continue;
        }
        try {
          if (Math.random() < 0.7) {
            const value = (live.get(name) ?? 0) + 1;
            await items.patch(name, { spec: { value } }, { type: "merge" });
            live.set(name, value);
            driver.updates++;
          } else {
            const uid = (await items.get(name)).metadata?.uid ?? "";
            await items.delete(name);
            timeline({ driver: "delete", name, uid });
            live.delete(name);
            deleted.add(uid);
            driver.deletes++;
            await create();
          }
        } catch {
          driver.errors++;
        }
      }
    })();

    // Faults, in turn.
    const injected: ChaosReport["injected"] = {};
    const storms: { from: number; to: number }[] = [];
    let turn = 0;
    const more = () => (plan.faultCount !== undefined ? turn < plan.faultCount : Date.now() + plan.faultEveryMs < churnEnd || turn < plan.faults.length);
    while (more()) {
      await sleep(plan.faultEveryMs);
      const fault = plan.faults[turn++ % plan.faults.length] as FaultKind;
      timeline({ fault });
      log(`fault ${fault} at ${((Date.now() - started) / 1000).toFixed(1)} s`);
      injected[fault] = (injected[fault] ?? 0) + 1;
      await inject(fault, { plan, cp, tcp, http, storms, stopOperator, startOperator });
    }
    faultsDone = true;
    await churn;
    http.heal();
    tcp.heal();
    const churnDone = Date.now();
    log(`churn done: ${JSON.stringify(driver)}; waiting for the final state`);

    // The final state: every deleted object gone, every live object handled at its final spec.
    const deadline = churnDone + (plan.convergeTimeoutMs ?? 120_000);
    let list: KubeObject[] = [];
    for (;;) {
      try {
        list = (await items.list()).items;
        const gone = list.every((o) => !deleted.has(o.metadata?.uid ?? "") && !o.metadata?.deletionTimestamp);
        if (gone && list.every(handledAt)) break;
      } catch {
        // the server may still be coming back
      }
      if (Date.now() > deadline) break;
      await sleep(250);
    }
    const convergeMs = Date.now() - churnDone;
    ending = true;
    await stopOperator("SIGTERM");

    const report = analyse(readJournal(journal), list, deleted, { killed, terminated }, started, events, await stopWatching());
    const itemRequests = http.requestsSince(started).filter((r) => r.path.includes(`/apis/${group}/`));
    const stormRequests = storms.flatMap((s) => http.requestsSince(s.from).filter((r) => r.at <= s.to));
    return {
      ...report,
      injected,
      driver,
      live: list.length,
      churnMs: churnDone - started,
      convergeMs,
      stormRate: rates(stormRequests.map((r) => r.at), storms),
      operatorStarts: starts,
      crashes,
      lists: itemRequests.filter((r) => r.method === "GET" && (r.watch ? /[?&]sendInitialEvents=true/.test(r.path) : /\/items(\?|$)/.test(r.path))).length,
      gone: itemRequests.filter((r) => r.status === 410).length,
    };
  } finally {
    ending = true;
    await stopWatching();
    await stopOperator("SIGKILL").catch(() => {});
    await http.close();
    await tcp.close();
    await admin.resource(Namespace).delete(ns).catch(() => {});
    await admin.resource(CustomResourceDefinition).delete(`items.${group}`).catch((e: unknown) => {
      if (!(e instanceof NotFoundError)) throw e;
    });
    await admin.close();
    if (debugDir) {
      try {
        copyFileSync(journal, join(debugDir, "journal"));
      } catch {
        // no operator ran
      }
      writeFileSync(join(debugDir, "requests.jsonl"), http.requestsSince(0).map((r) => JSON.stringify(r)).join("\n"));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

interface InjectContext {
  plan: ChaosPlan;
  cp: ControlPlane;
  tcp: FaultProxy;
  http: HttpFaultProxy;
  storms: { from: number; to: number }[];
  stopOperator: (signal: "SIGKILL" | "SIGTERM") => Promise<void>;
  startOperator: () => void;
}

async function inject(fault: FaultKind, c: InjectContext): Promise<void> {
  const length = c.plan.faultLengthMs;
  switch (fault) {
    case "operator-sigkill":
    case "operator-sigterm":
      await c.stopOperator(fault === "operator-sigkill" ? "SIGKILL" : "SIGTERM");
      c.startOperator();
      return;
    case "apiserver-restart":
      return c.cp.restart("kube-apiserver", { downMs: length });
    case "etcd-restart":
      return c.cp.restart("etcd", { downMs: length });
    case "connections-cut":
      c.tcp.cutAll();
      return;
    case "stream-hang":
      c.tcp.hang();
      await sleep(length);
      c.tcp.heal();
      return;
    case "429-storm":
    case "503-storm": {
      const from = Date.now();
      c.http.inject({ status: fault === "429-storm" ? 429 : 503, retryAfterSeconds: 1 });
      c.http.cutAll();
      await sleep(length);
      c.http.heal();
      c.storms.push({ from, to: Date.now() });
      return;
    }
    case "slow-responses":
      c.http.inject({ delayMs: 500 });
      await sleep(length);
      c.http.heal();
      return;
  }
}

/** Whether an Item was handled at its current spec (diff base = spec) and its create handler's result is kept. */
function handledAt(object: KubeObject): boolean {
  const annotations = object.metadata?.annotations ?? {};
  const base = annotations["chaos.kubeloop.dev/last-handled"];
  if (!base || annotations["chaos.kubeloop.dev/progress"]) return false;
  const made = (object as { status?: { made?: unknown } }).status?.made;
  const spec = (object as { spec?: { value?: number } }).spec;
  return made !== undefined && (JSON.parse(base) as { spec?: { value?: number } }).spec?.value === spec?.value;
}

interface Journal {
  creates: Map<string, { pid: number; seq: number; rv: string; at: number }[]>;
  deletes: Set<string>;
  samples: { at: number; rss: number; tracked: number; pid: number }[];
}

function readJournal(path: string): Journal {
  const j: Journal = { creates: new Map(), deletes: new Set(), samples: [] };
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return j;
  }
  for (const row of text.split("\n")) {
    const [kind, a = "", b = "", c = "", d = "", e = ""] = row.split(" ");
    if (kind === "C") j.creates.set(a, [...(j.creates.get(a) ?? []), { pid: Number(b), seq: Number(c), rv: e, at: Number(d) }]);
    if (kind === "D") j.deletes.add(a);
    if (kind === "T") j.samples.push({ at: Number(c), tracked: Number(a), rss: Number(b), pid: Number(d) });
  }
  return j;
}

function analyse(j: Journal, list: KubeObject[], deleted: Set<string>, stopped: { killed: Set<number>; terminated: Set<number> }, started: number, events: { time: number; [key: string]: unknown }[], vanishes: Map<string, number>) {
  const unexplainedRepeats: string[] = [];
  let repeatsAfterKill = 0;
  let createRuns = 0;
  for (const [uid, runs] of j.creates) {
    createRuns += runs.length;
    for (const earlier of runs.slice(0, -1)) {
      if (stopped.killed.has(earlier.pid)) repeatsAfterKill++;
      else unexplainedRepeats.push(`${uid}: ran in ${earlier.pid} (${stopped.terminated.has(earlier.pid) ? "stopped by SIGTERM later" : "never stopped"}) and again in ${runs.at(-1)?.pid}; runs (pid/seq@resourceVersion): ${runs.map((r) => `${r.pid}/${r.seq}@${r.rv}`).join(", ")}`);
    }
  }
  const notKept: string[] = [];
  const lastChangeMissed: string[] = [];
  for (const o of list) {
    const uid = o.metadata?.uid ?? "";
    const runs = j.creates.get(uid) ?? [];
    const made = (o as { status?: { made?: { pid: number; seq: number } } }).status?.made;
    const last = runs.at(-1);
    if (!made || !last || made.pid !== last.pid || made.seq !== last.seq) notKept.push(`${o.metadata?.name}: status.made ${JSON.stringify(made)}, runs ${JSON.stringify(runs)}`);
    if (!handledAt(o)) lastChangeMissed.push(`${o.metadata?.name}: not marked handled at its spec`);
  }
  const present = new Set(list.map((o) => o.metadata?.uid ?? ""));
  const notGone = [...deleted].filter((uid) => present.has(uid));
  // With what a reader of a failure needs: the create runs (pid/seq@resourceVersion, at +s,
  // whether that pid was SIGKILLed), when the driver deleted it, and the faults and operator starts within 2 s of that.
  const at = (time: number) => `+${((time - started) / 1000).toFixed(2)}s`;
  const missed = [...deleted].filter((uid) => j.creates.has(uid) && !j.deletes.has(uid));
  const describe = (uid: string) => {
    const runs = (j.creates.get(uid) ?? []).map((r) => `${r.pid}${stopped.killed.has(r.pid) ? " (killed later)" : ""}/${r.seq}@${r.rv} at ${at(r.at)}`);
    const deletedAt = events.find((e) => e.driver === "delete" && e.uid === uid)?.time;
    const near = deletedAt === undefined ? [] : events.filter((e) => (e.fault !== undefined || e.start !== undefined) && Math.abs(e.time - deletedAt) < 2_000).map((e) => `${e.fault !== undefined ? String(e.fault) : `operator ${String(e.start)} started`} at ${at(e.time)}`);
    const vanishedAt = vanishes.get(uid);
    const gone = vanishedAt === undefined ? "" : `; removed with the finalizer and no deletionTimestamp (kubernetes/kubernetes#77988) at ${at(vanishedAt)}`;
    return `${uid}: create runs ${runs.join(", ")}; deleted ${deletedAt === undefined ? "at ?" : at(deletedAt)}${gone}; faults and starts within 2 s: ${near.join(", ") || "none"}`;
  };
  // Lost to a SIGKILL: the API server removed it with our finalizer (so only the process that
  // saw it go could run its delete handlers, from memory), and that process, the one that ran
  // its create handler, was SIGKILLed soon after.
  const lostToKill = (uid: string) => {
    const vanishedAt = vanishes.get(uid);
    const last = j.creates.get(uid)?.at(-1);
    if (vanishedAt === undefined || last === undefined) return false;
    const killedAt = events.find((e) => e.killed === last.pid)?.time;
    return killedAt !== undefined && killedAt >= last.at && killedAt - vanishedAt < VANISH_KILL_MS;
  };
  const deleteHandlerMissed = missed.filter((uid) => !lostToKill(uid)).map(describe);
  const vanishedLostToKill = missed.filter(lostToKill).map(describe);
  return {
    createRuns,
    repeatsAfterKill,
    unexplainedRepeats,
    notKept,
    lastChangeMissed,
    deleteHandlerMissed,
    vanished: vanishes.size,
    vanishedLostToKill,
    notGone,
    samples: j.samples.map((s) => ({ t: (s.at - started) / 1000, rss: s.rss, tracked: s.tracked, pid: s.pid })),
  };
}

function rates(times: number[], windows: { from: number; to: number }[]): ChaosReport["stormRate"] {
  const seconds = windows.reduce((sum, w) => sum + (w.to - w.from) / 1000, 0);
  const perSecond = new Map<number, number>();
  for (const t of times) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
  return { maxPerSecond: Math.max(0, ...perSecond.values()), meanPerSecond: seconds ? times.length / seconds : 0 };
}

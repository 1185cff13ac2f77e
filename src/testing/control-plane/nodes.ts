// Simulated nodes for the local control plane: the real kube-scheduler and KWOK's controller
// (sigs.k8s.io/kwok, built into the multi-call binary) make Pods scheduled, Running and Ready on
// Node objects no kubelet backs, and kube-controller-manager's workload controllers turn
// Deployments, Jobs and the rest into those Pods. No container runs: a Pod's phase and conditions
// are KWOK's stages (its own files: Ready at once, Succeeded for a Job's Pod, gone once deleted).
import { request } from "node:https";
import { ControlPlaneError } from "./errors.js";

/** The most simulated nodes one control plane takes (KWOK itself handles thousands; this bounds a typo). */
export const MAX_NODES = 1000;

/**
 * The kube-controller-manager controllers that run workloads, added to the default ones when
 * nodes are on. Left out: node-ipam (no Pod network), the persistent volume controllers (no
 * storage), horizontal-pod-autoscaler (no metrics API), the certificate signers and the
 * bootstrap token ones (no kubelets to join), resourceclaim and the DRA ones (no drivers).
 */
export const WORKLOAD_CONTROLLERS: readonly string[] = [
  "deployment-controller",
  "replicaset-controller",
  "replicationcontroller-controller",
  "statefulset-controller",
  "daemonset-controller",
  "job-controller",
  "cronjob-controller",
  "ttl-after-finished-controller",
  "endpoints-controller",
  "endpointslice-controller",
  "endpointslice-mirroring-controller",
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "root-ca-certificate-publisher-controller",
  "disruption-controller",
  "pod-garbage-collector-controller",
  "resourcequota-controller",
  "node-lifecycle-controller",
  "taint-eviction-controller",
];

/** The annotation KWOK manages nodes by (kwokctl's own). */
export const KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node";

/** Refuses a node count that is not an integer from 0 to {@link MAX_NODES} (a BadOptions naming it). */
export function checkNodeCount(nodes: unknown): number {
  if (typeof nodes !== "number" || !Number.isInteger(nodes) || nodes < 0 || nodes > MAX_NODES) {
    throw new ControlPlaneError("BadOptions", `nodes must be an integer from 0 to ${MAX_NODES}, not ${JSON.stringify(nodes)}`);
  }
  return nodes;
}

/** `--nodes VALUE` of the CLI (`fallback` when absent): the count, or the message refusing it. */
export function nodesFlag(value: string | undefined, fallback: number): number | string {
  if (value === undefined) return fallback;
  const nodes = Number(value);
  return /^\d+$/.test(value) && nodes <= MAX_NODES ? nodes : `--nodes must be an integer from 0 to ${MAX_NODES}, not "${value}"`;
}

/** Each simulated node's name: `kubeloop-node-0`, `-1`, … */
export function nodeName(index: number): string {
  return `kubeloop-node-${index}`;
}

/** What each simulated node offers the scheduler: enough for tests, small enough that fit matters. */
export const NODE_ALLOCATABLE = Object.freeze({ cpu: "4", memory: "8Gi", pods: "110", "ephemeral-storage": "50Gi" });

/** A Node object KWOK takes care of (its annotation), as kwokctl creates them. */
export function nodeObject(index: number): Record<string, unknown> {
  const name = nodeName(index);
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      annotations: { [KWOK_NODE_ANNOTATION]: "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/agent": "", type: "kwok" },
    },
    spec: { podCIDR: `10.244.${index % 256}.0/24` },
    status: {
      allocatable: NODE_ALLOCATABLE,
      capacity: NODE_ALLOCATABLE,
      nodeInfo: { architecture: "amd64", operatingSystem: "linux", kubeletVersion: "kwok", kubeProxyVersion: "kwok", containerRuntimeVersion: "kwok" },
      phase: "Running",
    },
  };
}

/** kube-scheduler on the admin kubeconfig: no leader election (one scheduler), no serving port. */
export function schedulerFlags(kubeconfigPath: string): string[] {
  return [`--kubeconfig=${kubeconfigPath}`, "--leader-elect=false", "--secure-port=0"];
}

/** KWOK's controller for the nodes carrying its annotation, with the default stages (controlplane/main.go). */
export function kwokFlags(kubeconfigPath: string): string[] {
  return [
    `--kubeconfig=${kubeconfigPath}`,
    "--manage-all-nodes=false",
    `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
    "--cidr=10.244.0.0/16",
    "--node-ip=10.0.1.1",
    "--node-lease-duration-seconds=40",
  ];
}

type Tls = { ca: string; cert: string; key: string };

/**
 * Makes the simulated Nodes exactly `count`: creates those missing (one kept in a data dir is
 * left as it is) and deletes those beyond (a data dir started before with more), so no Node
 * that nothing keeps Ready is left for the scheduler.
 */
export async function syncNodes(server: string, tls: Tls, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const { status, body } = await call(server, tls, "POST", "/api/v1/nodes", nodeObject(i));
    if (status !== 201 && status !== 409) throw new ControlPlaneError("NotReady", `creating node ${nodeName(i)}: HTTP ${status} ${body.slice(0, 300)}`);
  }
  const wanted = new Set(Array.from({ length: count }, (_, i) => nodeName(i)));
  for (const { metadata: { name } } of await simulatedNodes(server, tls)) {
    if (wanted.has(name)) continue;
    const { status, body } = await call(server, tls, "DELETE", `/api/v1/nodes/${name}`);
    if (status !== 200 && status !== 404) throw new ControlPlaneError("NotReady", `deleting node ${name}: HTTP ${status} ${body.slice(0, 300)}`);
  }
}

/** The Nodes labelled `type=kwok` (ours), as the API server has them. */
async function simulatedNodes(server: string, tls: Tls): Promise<{ metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[]> {
  const { status, body } = await call(server, tls, "GET", `/api/v1/nodes?labelSelector=type%3Dkwok`);
  if (status !== 200) throw new ControlPlaneError("NotReady", `listing the simulated nodes: HTTP ${status} ${body.slice(0, 300)}`);
  return (JSON.parse(body) as { items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[] }).items;
}

/** The names of the simulated nodes whose Ready condition is True. */
export async function readyNodes(server: string, tls: Tls): Promise<string[]> {
  return (await simulatedNodes(server, tls)).filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).map((n) => n.metadata.name);
}

function call(server: string, tls: Tls, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${server}${path}`, { ...tls, method, timeout: 10_000, agent: false, headers: data ? { "content-type": "application/json" } : {} }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(data);
  });
}

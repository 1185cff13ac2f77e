// What tests of operators that manage workloads need on a control plane with simulated nodes
// (`startControlPlane({ nodes })`): wait for a Deployment's rollout as `kubectl rollout status`
// does, make a Pod fail (KWOK's chaos stage), cordon a node.
import type * as core from "../core/kube/core/v1.js";
import type { Client } from "../client/client.js";
import { deadline, waitFor } from "../core/async.js";
import { Deployment, Node, Pod } from "../core/builtins.js";

/** The label KWOK's stage `pod-container-running-failed` fails a Running Pod by (controlplane/kwok-stages). */
export const FAIL_POD_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io";

/** How {@link failPod} fails a Pod's containers. */
export interface FailPodOptions {
  /** The container's terminated reason. Default "containerFailed". */
  reason?: string;
  /** Its message. Default "container failed". */
  message?: string;
  /** Its exit code. Default 1. */
  exitCode?: number;
  /** Only this container (the others stay running). Default: every container. */
  container?: string;
  /** How long to wait for the Pod to be Failed. Default 30 000 ms. */
  timeoutMs?: number;
}

/**
 * Makes a Running Pod fail, as a crashed container would: its phase becomes Failed, Ready false,
 * the containers terminated with `exitCode`. Resolves with the Pod as it was when it failed (seen
 * through a watch, so also when the operator under test deletes it at once). Works on a
 * local control plane with `nodes` (KWOK plays the failure); elsewhere nothing plays it, and it
 * rejects after `timeoutMs` naming the Pod. A controller that owns the Pod reacts as on a real
 * cluster (a ReplicaSet makes a replacement, a Job counts a failure).
 */
export async function failPod(client: Client, pod: { namespace: string; name: string }, options: FailPodOptions = {}): Promise<core.Pod> {
  const prefix = FAIL_POD_LABEL; // the annotations share the label's name as their prefix
  const annotations: Record<string, string> = {
    ...(options.reason ? { [`${prefix}/reason`]: options.reason } : {}),
    ...(options.message ? { [`${prefix}/message`]: options.message } : {}),
    ...(options.exitCode !== undefined ? { [`${prefix}/exit-code`]: String(options.exitCode) } : {}),
    ...(options.container ? { [`${prefix}/container-name`]: options.container } : {}),
    [`${prefix}/delay`]: "0",
    [`${prefix}/jitter-delay`]: "0",
  };
  const pods = client.resource(Pod).namespace(pod.namespace);
  const patched = await pods.patch(pod.name, { metadata: { labels: { [prefix]: "true" }, annotations } }, { type: "merge" });
  // Watched from the patch on, not polled: an operator under test may delete the Pod the moment
  // it fails (as a controller cleaning up failed Pods does), and a watch still sees it Failed first.
  const what = `Pod ${pod.namespace}/${pod.name} Failed (it must be Running on a simulated node)`;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const until = Date.now() + timeoutMs;
  let resourceVersion = patched.metadata?.resourceVersion;
  let seen: core.Pod = patched;
  while (seen.status?.phase !== "Failed") {
    const left = until - Date.now();
    if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: it is ${seen.status?.phase ?? "without a phase"}`);
    const timer = deadline(left);
    try {
      for await (const event of pods.watch({ fieldSelector: `metadata.name=${pod.name}`, resourceVersion, timeoutSeconds: Math.ceil(left / 1000), signal: timer.signal })) {
        if (event.type === "ERROR") throw new Error(`watching for ${what}: ${(event.object as { message?: string }).message ?? "the watch failed"}`);
        if (event.type === "BOOKMARK") continue;
        seen = event.object;
        resourceVersion = seen.metadata?.resourceVersion;
        if (seen.status?.phase === "Failed") break;
        if (event.type === "DELETED") throw new Error(`waiting for ${what}: it was deleted before it failed`);
      }
    } finally {
      timer.clear();
    }
  }
  return seen;
}

/**
 * Resolves once a Deployment's rollout is complete, as `kubectl rollout status` decides: the
 * controller saw its latest generation, every replica is updated, available and Ready, and no
 * Pod of an older template is left. Rejects after `timeoutMs` (default 60 000) with where it stands.
 */
export async function waitForRollout(client: Client, deployment: { namespace: string; name: string }, options: { timeoutMs?: number } = {}): Promise<void> {
  const deployments = client.resource(Deployment).namespace(deployment.namespace);
  let last = "not read yet";
  await waitFor(`the rollout of Deployment ${deployment.namespace}/${deployment.name}`, async () => {
    const d = await deployments.get(deployment.name);
    const want = d.spec?.replicas ?? 1;
    const s = d.status ?? {};
    last = `generation ${d.metadata?.generation} observed ${s.observedGeneration}, ${s.updatedReplicas ?? 0} updated, ${s.readyReplicas ?? 0} ready, ${s.availableReplicas ?? 0} available, ${s.replicas ?? 0} in all, of ${want}`;
    return (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) && s.updatedReplicas === want && (s.readyReplicas ?? 0) === want && (s.availableReplicas ?? 0) === want && (s.replicas ?? 0) === want;
  }, { timeoutMs: options.timeoutMs ?? 60_000 }).catch((error: unknown) => {
    throw new Error(`${error instanceof Error ? error.message : String(error)}: ${last}`, { cause: error });
  });
}

/** Marks a node unschedulable (`kubectl cordon`), or schedulable again with `false`. Pods on it stay. */
export async function cordon(client: Client, node: string, unschedulable = true): Promise<void> {
  await client.resource(Node).patch(node, { spec: { unschedulable } }, { type: "merge" });
}

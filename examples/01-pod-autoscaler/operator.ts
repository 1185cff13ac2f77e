// 01 — pod autoscaler: a PodAutoscaler scales a Deployment toward
//   desired = clamp(ceil(items in the WorkQueue / targetItemsPerReplica), minReplicas, maxReplicas)
// Scale-ups happen at once; a scale-down goes only to the highest recommendation of the last
// `stabilizationWindowSeconds` (as the HorizontalPodAutoscaler does), so a brief dip in load does
// not shed replicas; the bounds themselves apply at once (a lowered maximum is not held by the
// window). Recommendations are kept in the status, so a restarted operator keeps its
// window. It writes status (current/desired replicas, items, last scale time, conditions) and
// Events (ScaledUp / ScaledDown).
//
// Level-based (controller-runtime style): a reconcile reads the autoscaler, its WorkQueue and
// Deployment from the cache, acts, and asks to be called again when the window ends.
import { Action, Deployment, Operator, predicates, setCondition, type ReconcileContext } from "kubeloop";
import { PodAutoscaler, WorkQueue, type PodAutoscalerObject } from "./resources.js";

export { PodAutoscaler, WorkQueue };
/** The CRDs `kubeloop dev` installs before running the operator. */
export const crds = [WorkQueue.crd, PodAutoscaler.crd];

export const op = new Operator({ name: "pod-autoscaler" });
// What the reconciler does by hand, for the generated RBAC: it scales Deployments.
op.permissions({ group: "apps", resource: "deployments/scale", verbs: ["patch"], why: "scale the target" });

op.controller(PodAutoscaler)
  // Our own status writes do not change the generation: only spec changes (and creations) count.
  .withPredicates(predicates.generationChanged)
  // A changed queue or Deployment reconciles the autoscalers that refer to it.
  .watches(WorkQueue, (queue, autoscalers) =>
    autoscalers
      .list()
      .filter((a) => a.metadata?.namespace === queue.metadata?.namespace && a.spec.metric.workQueue === queue.metadata?.name)
      .map((a) => ({ namespace: a.metadata?.namespace as string, name: a.metadata?.name as string })),
  )
  .watches(Deployment, (deployment, autoscalers) =>
    autoscalers
      .list()
      .filter((a) => a.metadata?.namespace === deployment.metadata?.namespace && a.spec.target === deployment.metadata?.name)
      .map((a) => ({ namespace: a.metadata?.namespace as string, name: a.metadata?.name as string })),
  )
  .concurrency(4)
  .reconcile(reconcile);

export async function reconcile(ref: { namespace?: string; name: string }, ctx: ReconcileContext<PodAutoscalerObject>): Promise<Action | void> {
  const pa = ctx.object;
  if (!pa) return;
  const ns = ref.namespace as string;
  const { spec } = pa;
  const status = structuredClone(pa.status ?? {});
  const next: PodAutoscalerObject = { ...pa, status };

  const queue = await ctx.cache.get(WorkQueue, spec.metric.workQueue, ns, ctx.signal);
  const deployment = await ctx.cache.get(Deployment, spec.target, ns, ctx.signal);
  if (!queue || !deployment) {
    const missing = !deployment ? `Deployment ${spec.target}` : `WorkQueue ${spec.metric.workQueue}`;
    if (setCondition(next, { type: "AbleToScale", status: "False", reason: "TargetMissing", message: `${missing} not found` })) await ctx.applyStatus({ conditions: status.conditions });
    return; // a watched object appearing reconciles again
  }
  if (spec.maxReplicas < spec.minReplicas) {
    setCondition(next, { type: "AbleToScale", status: "False", reason: "InvalidBounds", message: `maxReplicas ${spec.maxReplicas} < minReplicas ${spec.minReplicas}` });
    await ctx.applyStatus({ conditions: status.conditions });
    return;
  }

  const now = Date.now();
  const windowMs = (spec.stabilizationWindowSeconds ?? 300) * 1000;
  const items = queue.spec.items.length;
  const raw = Math.ceil(items / spec.metric.targetItemsPerReplica);
  const recommended = Math.min(spec.maxReplicas, Math.max(spec.minReplicas, raw));
  // History of recommendations: an entry per change; the previous one held until now.
  const history = (status.recommendations ?? []).map((r) => ({ ...r }));
  const previous = history.at(-1);
  if (previous?.replicas !== recommended) {
    if (previous) previous.at = now;
    history.push({ at: now, replicas: recommended });
  }
  const recent = history.filter((r, i) => i === history.length - 1 || now - r.at < windowMs);
  const current = deployment.spec?.replicas ?? 1;
  // Up at once; down only to the highest recommendation within the window. The bounds apply at
  // once (as with a HorizontalPodAutoscaler): a lowered maximum is not held by the window.
  const windowed = recommended >= current ? recommended : Math.min(current, Math.max(...recent.map((r) => r.replicas)));
  const desired = Math.min(spec.maxReplicas, Math.max(spec.minReplicas, windowed));

  if (desired !== current) {
    await ctx.client.resource(Deployment).namespace(ns).patchScale(spec.target, { spec: { replicas: desired } }, { type: "merge" });
    status.lastScaleTime = new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z");
    const verb = desired > current ? "ScaledUp" : "ScaledDown";
    ctx.event({ reason: verb, action: "Scale", note: `${spec.target} from ${current} to ${desired} replicas: ${items} items, ${spec.metric.targetItemsPerReplica} per replica`, related: deployment });
    ctx.logger.info({ from: current, to: desired, items }, verb);
  }
  const limited = raw > spec.maxReplicas ? "TooManyReplicas" : raw < spec.minReplicas ? "TooFewReplicas" : undefined;
  setCondition(next, { type: "AbleToScale", status: "True", reason: "ReadyForNewScale", message: "target and metric found" });
  setCondition(
    next,
    limited
      ? { type: "ScalingLimited", status: "True", reason: limited, message: `wanted ${raw} replicas, bounds are ${spec.minReplicas}..${spec.maxReplicas}` }
      : { type: "ScalingLimited", status: "False", reason: "DesiredWithinRange", message: `${raw} replicas within ${spec.minReplicas}..${spec.maxReplicas}` },
  );
  const written = {
    currentReplicas: desired,
    desiredReplicas: recommended,
    currentItems: items,
    observedGeneration: pa.metadata?.generation ?? 0,
    recommendations: recent,
    conditions: status.conditions,
    ...(status.lastScaleTime ? { lastScaleTime: status.lastScaleTime } : {}),
  };
  const before = pa.status ?? {};
  if (JSON.stringify(written) !== JSON.stringify({ ...written, ...pick(before, Object.keys(written)) }) || Object.keys(written).some((k) => !(k in before))) {
    await ctx.applyStatus(written);
  }
  // While a scale-down waits in the window, come back when the highest blocking recommendation expires.
  const blocking = recent.filter((r, i) => i < recent.length - 1 && r.replicas > recommended).map((r) => r.at + windowMs - now);
  if (desired > recommended && blocking.length) return Action.requeueAfter(Math.max(100, Math.min(...blocking)));
  return;
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
}

export default op;

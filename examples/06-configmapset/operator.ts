// ConfigMapSet operator: a ReplicaSet for ConfigMaps, at controller-runtime's level.
//
// - keeps `spec.replicas` ConfigMaps named <set>-0 … <set>-(N-1), with `spec.data`, each
//   controlled by the set (deleting one brings it back; changing N scales);
// - records every set in a shared, unowned "configmapset-registry" ConfigMap, and removes the
//   entry in a finalizer when the set is deleted (cleanup of state the garbage collector does
//   not know about); the owned ConfigMaps are then removed by the garbage collector;
// - reports status (replicas, a Ready condition with observedGeneration) and Events.
//
// Run it: npx kubeloop run examples/06-configmapset/operator.ts --install-crds   (or kubeloop dev)
import { ConfigMap, Operator, setCondition, AlreadyExistsError, type ReconcileContext } from "kubeloop";
import { ConfigMapSet, type ConfigMapSetObject } from "./resource.js";

export const FINALIZER = "examples.kubeloop.dev/registry";
export const REGISTRY = "configmapset-registry";

export const op = new Operator({ name: "configmapsets", leaderElection: false });
// The reconcile deletes ConfigMaps its set no longer names (the generated RBAC grants owned
// children what ctx.apply needs, not delete).
op.permissions({ group: "", resource: "configmaps", verbs: ["delete"] });

op.controller(ConfigMapSet)
  .owns(ConfigMap)
  .reconcile(async (ref, ctx) => {
    const set = ctx.object;
    if (!set) return; // deleted: the garbage collector removes its ConfigMaps
    if (await ctx.finalizer(FINALIZER, (gone) => unregister(ctx, gone))) return;
    await register(ctx, set);

    const namespace = ref.namespace as string;
    const want = set.spec.replicas;
    const owned = await ctx.cache.list(ConfigMap, { namespace, ownerUid: set.metadata?.uid as string });
    const byName = new Map(owned.map((c) => [c.metadata?.name, c]));
    let created = 0;
    for (let i = 0; i < want; i++) {
      const name = `${ref.name}-${i}`;
      const current = byName.get(name);
      if (current && JSON.stringify(current.data ?? {}) === JSON.stringify(set.spec.data ?? {})) continue;
      await ctx.apply(ConfigMap, { metadata: { name, namespace, labels: { "examples.kubeloop.dev/set": ref.name } }, data: set.spec.data ?? {} });
      if (!current) created++;
    }
    let deleted = 0;
    for (const c of owned) {
      const index = Number(c.metadata?.name?.slice(ref.name.length + 1));
      if (Number.isInteger(index) && index >= want && !c.metadata?.deletionTimestamp) {
        await ctx.client.resource(ConfigMap).namespace(namespace).delete(c.metadata?.name as string);
        deleted++;
      }
    }
    if (created || deleted) {
      ctx.event({ reason: "Scaled", action: "Scale", note: `created ${created}, deleted ${deleted} ConfigMaps (want ${want})` });
      ctx.logger.info({ created, deleted, want }, "scaled");
    }

    const status = structuredClone(set);
    status.status = { ...status.status, replicas: want, observedGeneration: set.metadata?.generation ?? 0 };
    setCondition(status, { type: "Ready", status: "True", reason: "AllPresent", message: `${want} ConfigMaps present` });
    const before = set.status;
    const cond = (o?: ConfigMapSetObject["status"]) => JSON.stringify(o?.conditions?.find((c) => c.type === "Ready"));
    if (before?.replicas !== want || before?.observedGeneration !== set.metadata?.generation || cond(before) !== cond(status.status)) {
      await ctx.applyStatus(status.status);
    }
  });

/** Adds the set to the shared registry ConfigMap (created on first use). */
async function register(ctx: ReconcileContext<ConfigMapSetObject>, set: ConfigMapSetObject): Promise<void> {
  const namespace = set.metadata?.namespace as string;
  const name = set.metadata?.name as string;
  const registry = await ctx.cache.get(ConfigMap, REGISTRY, namespace);
  if (registry?.data?.[name] === set.metadata?.uid) return;
  const configMaps = ctx.client.resource(ConfigMap).namespace(namespace);
  if (!registry) {
    try {
      await configMaps.create({ metadata: { name: REGISTRY, namespace }, data: { [name]: set.metadata?.uid as string } });
      return;
    } catch (error) {
      if (!(error instanceof AlreadyExistsError)) throw error;
    }
  }
  await configMaps.patch(REGISTRY, { data: { [name]: set.metadata?.uid } }, { type: "merge" });
}

/** The finalizer's cleanup: removes the set from the registry. */
async function unregister(ctx: ReconcileContext<ConfigMapSetObject>, set: ConfigMapSetObject): Promise<void> {
  const namespace = set.metadata?.namespace as string;
  const name = set.metadata?.name as string;
  await ctx.client.resource(ConfigMap).namespace(namespace).patch(REGISTRY, { data: { [name]: null } }, { type: "merge" });
  ctx.event({ reason: "Unregistered", action: "Cleanup", note: `removed ${name} from ${REGISTRY}` });
}

export default op;

// 05 — children and status: an `App` custom resource owns a Deployment, a Service and a
// ConfigMap (server-side applied with the operator's field manager) and gathers their state
// into its own status: replicas ready, the Service's cluster IP, the config keys, and a Ready
// condition, with an Event when readiness changes. Level-based: any change to the App or a child
// reconciles the App.
import { ConditionsSchema, ConfigMap, Deployment, Operator, Service, Type, defineResource, setCondition, type ObjectOf } from "kubeloop";

export const App = defineResource({
  group: "examples.kubeloop.dev",
  version: "v1",
  kind: "App",
  spec: Type.Object({
    image: Type.String(),
    replicas: Type.Integer({ minimum: 0 }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    config: Type.Optional(Type.Record(Type.String(), Type.String())),
  }),
  status: Type.Object({
    replicas: Type.Optional(Type.Integer()),
    readyReplicas: Type.Optional(Type.Integer()),
    clusterIP: Type.Optional(Type.String()),
    configKeys: Type.Optional(Type.Array(Type.String())),
    conditions: Type.Optional(ConditionsSchema),
  }),
});

type AppObject = ObjectOf<typeof App>;

export const op = new Operator({ name: "apps" });

op.controller(App)
  .owns(Deployment)
  .owns(Service)
  .owns(ConfigMap)
  .reconcile(async (ref, ctx) => {
    const app = ctx.object;
    if (!app) return; // deleted: the garbage collector removes the children
    const ns = ref.namespace as string;
    const labels = { "app.kubernetes.io/name": ref.name };
    await ctx.apply(ConfigMap, { metadata: { name: `${ref.name}-config`, namespace: ns, labels }, data: app.spec.config ?? {} });
    await ctx.apply(Deployment, {
      metadata: { name: ref.name, namespace: ns, labels },
      spec: {
        replicas: app.spec.replicas,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [{ name: "app", image: app.spec.image, ports: [{ containerPort: app.spec.port }], envFrom: [{ configMapRef: { name: `${ref.name}-config` } }] }],
          },
        },
      },
    });
    await ctx.apply(Service, { metadata: { name: ref.name, namespace: ns, labels }, spec: { selector: labels, ports: [{ port: app.spec.port, targetPort: app.spec.port }] } });

    // Gather the children's state (from the cache: it reflects the writes above).
    const deployment = await ctx.cache.get(Deployment, ref.name, ns);
    const service = await ctx.cache.get(Service, ref.name, ns);
    const config = await ctx.cache.get(ConfigMap, `${ref.name}-config`, ns);
    const ready = deployment?.status?.readyReplicas ?? 0;
    const next: AppObject = { ...app, status: structuredClone(app.status ?? {}) };
    setCondition(
      next,
      ready >= app.spec.replicas
        ? { type: "Ready", status: "True", reason: "AllReplicasReady", message: `${ready}/${app.spec.replicas} replicas ready` }
        : { type: "Ready", status: "False", reason: "ReplicasNotReady", message: `${ready}/${app.spec.replicas} replicas ready` },
    );
    const status = {
      replicas: app.spec.replicas,
      readyReplicas: ready,
      ...(service?.spec?.clusterIP ? { clusterIP: service.spec.clusterIP } : {}),
      configKeys: Object.keys(config?.data ?? {}).sort(),
      conditions: next.status?.conditions ?? [],
    };
    const before = app.status ?? {};
    const changed = (Object.keys(status) as (keyof typeof status)[]).some((k) => JSON.stringify(status[k]) !== JSON.stringify(before[k]));
    if (changed) await ctx.applyStatus(status);
    // An Event when readiness changes (kubectl describe app shows it).
    const wasReady = before.conditions?.find((c) => c.type === "Ready")?.status === "True";
    if (ready >= app.spec.replicas && !wasReady) ctx.event({ reason: "Ready", action: "Reconcile", note: `${ready}/${app.spec.replicas} replicas ready` });
    if (ready < app.spec.replicas && wasReady) ctx.event({ type: "Warning", reason: "NotReady", action: "Reconcile", note: `${ready}/${app.spec.replicas} replicas ready` });
  });

export default op;

// 13 — timers and daemons: per-object background work that lives as long as the object.
// A timer writes a heartbeat to status every second, but only once the object has been left
// alone for 2 s (idleMs); a daemon watches a ConfigMap named in the spec until the object is
// deleted (its signal aborts, and the finalizer waits for it to end).
import { ConfigMap, Operator, Type, defineResource } from "kubeloop";

export const Monitor = defineResource({
  group: "examples.kubeloop.dev",
  version: "v1",
  kind: "Monitor",
  spec: Type.Object({ target: Type.String() }),
  status: Type.Unknown(),
});

export const op = new Operator({ name: "monitors" });
// What the daemon does by hand, for the generated RBAC: it reads ConfigMaps and writes the Monitor's status.
op.permissions({ group: "", resource: "configmaps", verbs: ["get"] }, { group: "examples.kubeloop.dev", resource: "monitors/status", verbs: ["patch"] });

op.timer(Monitor, { intervalMs: 1_000, idleMs: 2_000 }, async function heartbeat({ patch, status }) {
  const beats = ((status as { beats?: number } | undefined)?.beats ?? 0) + 1;
  patch.status.beats = beats;
  patch.status.lastBeat = new Date().toISOString();
});

op.daemon(Monitor, async function watchTarget({ object, spec, client, signal, logger }) {
  const ns = object.metadata?.namespace as string;
  const configMaps = client.resource(ConfigMap).namespace(ns);
  while (!signal.aborted) {
    const found = await configMaps.get(spec.target).then(
      () => "present",
      () => "absent",
    );
    await client.resource(Monitor).namespace(ns).patchStatus(object.metadata?.name as string, { status: { target: found } }, { type: "merge" });
    await new Promise((r) => setTimeout(r, 500));
  }
  logger.info("object deleted or operator stopping: daemon ends");
});

export default op;

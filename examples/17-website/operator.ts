// 17 — a website, as a first real operator: a Website keeps a Deployment, a Service and a
// ConfigMap (nginx's server block for its hostname), reports how many of its replicas are Ready,
// rolls out a changed image and waits until every replica runs it, and reports a Pod that fails
// on the Website (status and a Warning Event) before clearing it away. Its test runs on a local
// control plane with simulated nodes, where the Pods are scheduled and become Ready.
import { ConfigMap, Deployment, NotFoundError, Operator, PRESENT, Pod, Service, TemporaryError, Type, adopt, defineResource, type HandlerContext, type ObjectOf } from "kubeloop";

export const Website = defineResource({
  group: "web.examples.kubeloop.dev",
  version: "v1",
  kind: "Website",
  shortNames: ["site"],
  spec: Type.Object({
    image: Type.String({ description: "the web server's image, e.g. nginx:1.27" }),
    replicas: Type.Integer({ minimum: 0, default: 2 }),
    hostname: Type.String({ description: "the host name the site answers to" }),
  }),
  status: Type.Object({
    readyReplicas: Type.Optional(Type.Integer()),
    image: Type.Optional(Type.String({ description: "the image every replica runs, once a rollout is complete" })),
    rollout: Type.Optional(Type.String({ description: "where the rollout of spec.image stands" })),
    lastFailure: Type.Optional(
      Type.Object({ pod: Type.String(), reason: Type.String(), exitCode: Type.Optional(Type.Integer()), time: Type.String() }),
    ),
  }),
  printerColumns: [
    { name: "Image", type: "string", jsonPath: ".status.image" },
    { name: "Ready", type: "integer", jsonPath: ".status.readyReplicas" },
    { name: "Host", type: "string", jsonPath: ".spec.hostname" },
  ],
});
type WebsiteObject = ObjectOf<typeof Website>;

export const op = new Operator({ name: "websites" });
// What the handlers do by hand, for the generated RBAC: they apply the children (server-side
// apply: patch, and create for the first apply), adopt() sets blockOwnerDeletion on their owner
// references (update on websites/finalizers, checked by the API server's admission), the Website's
// status is patched from Deployment and Pod events, and a failed Pod is deleted.
op.permissions(
  { group: "apps", resource: "deployments", verbs: ["create", "patch"] },
  { group: "", resource: "services", verbs: ["create", "patch"] },
  { group: "", resource: "configmaps", verbs: ["create", "patch"] },
  { group: "", resource: "pods", verbs: ["delete"] },
  { group: "web.examples.kubeloop.dev", resource: "websites/finalizers", verbs: ["update"] },
);

/** The label that ties a Deployment and its Pods to their Website. */
const SITE = "web.examples.kubeloop.dev/website";

/** The three children, applied as a whole each time: what is not said here is not ours. */
async function children({ object, spec, client }: HandlerContext<WebsiteObject>) {
  const name = object.metadata?.name as string;
  const labels = { [SITE]: name };
  const apply = { fieldManager: "websites", force: true };
  const config = adopt(
    {
      metadata: { name: `${name}-nginx` },
      data: { "default.conf": `server {\n  listen 80;\n  server_name ${spec.hostname};\n  root /usr/share/nginx/html;\n}\n` },
    },
    object,
  );
  const deployment = adopt(
    {
      metadata: { name, labels },
      spec: {
        replicas: spec.replicas,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [{ name: "web", image: spec.image, ports: [{ containerPort: 80 }], volumeMounts: [{ name: "nginx", mountPath: "/etc/nginx/conf.d" }] }],
            volumes: [{ name: "nginx", configMap: { name: `${name}-nginx` } }],
          },
        },
      },
    },
    object,
  );
  const service = adopt({ metadata: { name, labels }, spec: { selector: labels, ports: [{ port: 80, targetPort: 80 }] } }, object);
  const ns = object.metadata?.namespace as string;
  await client.resource(ConfigMap).namespace(ns).apply(config, apply);
  await client.resource(Deployment).namespace(ns).apply(deployment, apply);
  await client.resource(Service).namespace(ns).apply(service, apply);
}
op.on.create(Website, children);
op.on.update(Website, children);
op.on.resume(Website, children);

// A new image (or the first one) is rolled out: the handler is retried every second until the
// Deployment controller has moved every replica to it (kopf's way to wait: a TemporaryError),
// and given up after 10 minutes (the Deployment's own progress deadline).
op.on.field(
  Website,
  "spec.image",
  async function rollout({ object, new: image, client, patch, event }) {
    const d = await client.resource(Deployment).namespace(object.metadata?.namespace as string).get(object.metadata?.name as string);
    const want = d.spec?.replicas ?? 1;
    const s = d.status ?? {};
    const current = d.spec?.template.spec?.containers[0]?.image === image && (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
    const done = current && s.updatedReplicas === want && s.readyReplicas === want && s.availableReplicas === want && s.replicas === want;
    if (!done) {
      // Said in the status (the patch of a failed attempt is written too), then retried in a second.
      patch.status.rollout = `${String(image)}: ${s.updatedReplicas ?? 0} of ${want} updated, ${s.readyReplicas ?? 0} ready, ${s.replicas ?? 0} in all`;
      throw new TemporaryError(`rolling out ${patch.status.rollout as string}`, { delayMs: 1_000 });
    }
    patch.status.image = image;
    patch.status.rollout = `${String(image)}: complete`;
    event({ reason: "RolledOut", note: `${String(image)} runs on ${want} replicas` });
  },
  { timeoutMs: 600_000 },
);

// The Ready replicas, from the Deployment's status (a status change is no update of the
// Deployment's spec, so this is an event handler: it sees every change).
op.on.event(
  Deployment,
  async function readiness({ type, object: d, old, client }) {
    const ready = d.status?.readyReplicas ?? 0;
    if (type === "delete" || (old && (old.status?.readyReplicas ?? 0) === ready)) return;
    await ignoreGone(client.resource(Website).namespace(d.metadata?.namespace as string).patchStatus(d.metadata?.labels?.[SITE] as string, { status: { readyReplicas: ready } }, { type: "merge" }));
  },
  { labels: { [SITE]: PRESENT } },
);

// A Pod that failed (a crashed container, an OOM kill): its ReplicaSet has already made a
// replacement, so the Website says what happened and the failed Pod is cleared away.
op.on.event(
  Pod,
  async function failedPod({ type, object: pod, client, event, logger }) {
    if (type === "delete" || pod.metadata?.deletionTimestamp) return;
    const ns = pod.metadata?.namespace as string;
    const site = pod.metadata?.labels?.[SITE] as string;
    const terminated = pod.status?.containerStatuses?.find((c) => c.state?.terminated)?.state?.terminated;
    const reason = terminated?.reason ?? pod.status?.reason ?? "Failed";
    const failure = { pod: pod.metadata?.name as string, reason, ...(terminated ? { exitCode: terminated.exitCode } : {}), time: new Date().toISOString() };
    const website = await ignoreGone(client.resource(Website).namespace(ns).patchStatus(site, { status: { lastFailure: failure } }, { type: "merge" }));
    if (website) event({ type: "Warning", reason: "PodFailed", note: `Pod ${failure.pod} failed: ${reason}${terminated ? ` (exit code ${terminated.exitCode})` : ""}`, regarding: website });
    logger.info(`failed (${reason}): deleting it, its ReplicaSet has replaced it`);
    await ignoreGone(client.resource(Pod).namespace(ns).delete(failure.pod));
  },
  { labels: { [SITE]: PRESENT }, when: (pod) => pod.status?.phase === "Failed" },
);

/** The call's result, or undefined when its object is gone (deleted meanwhile: nothing to do). */
async function ignoreGone<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

export default op;

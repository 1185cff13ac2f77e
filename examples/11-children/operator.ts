// 11 — children: a Website creates a Deployment and a Service, adopted (owner reference,
// namespace, labels) so that deleting the Website deletes them; a field handler keeps the
// Deployment's replicas in step with spec.replicas.
import { Deployment, Operator, Service, Type, adopt, defineResource } from "kubeloop";

export const Website = defineResource({
  group: "examples.kubeloop.dev",
  version: "v1",
  kind: "Website",
  spec: Type.Object({ image: Type.String(), replicas: Type.Integer({ minimum: 0 }) }),
  status: Type.Unknown(),
});

export const op = new Operator({ name: "websites" });
// What the handlers do by hand, for the generated RBAC: they create the children and scale them,
// and adopt() sets blockOwnerDeletion on their owner references, which needs update on the
// Website's finalizers where the OwnerReferencesPermissionEnforcement admission plugin runs.
op.permissions(
  { group: "apps", resource: "deployments", verbs: ["create", "patch"] },
  { group: "", resource: "services", verbs: ["create"] },
  { group: "examples.kubeloop.dev", resource: "websites/finalizers", verbs: ["update"] },
);

op.on.create(Website, async function children({ object, spec, client }) {
  const name = object.metadata?.name as string;
  const labels = { app: name };
  const deployment = adopt(
    {
      metadata: { name, labels },
      spec: {
        replicas: spec.replicas,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: "web", image: spec.image }] } },
      },
    },
    object,
  );
  const service = adopt({ metadata: { name, labels }, spec: { selector: labels, ports: [{ port: 80 }] } }, object);
  await client.resource(Deployment).create(deployment);
  await client.resource(Service).create(service);
  return { deployment: name, service: name };
});

op.on.field(Website, "spec.replicas", async function scale({ object, old, new: replicas, client, logger }) {
  if (old === undefined) return; // the create handler set it
  await client
    .resource(Deployment)
    .namespace(object.metadata?.namespace as string)
    .patch(object.metadata?.name as string, { spec: { replicas } }, { type: "merge" });
  logger.info(`scaled from ${String(old)} to ${String(replicas)}`);
});

export default op;

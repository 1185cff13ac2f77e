// 12 — errors: a handler that waits for a dependency (TemporaryError, retried after its delay)
// and refuses invalid objects (PermanentError: recorded, a Warning event, never retried).
import { ConfigMap, NotFoundError, Operator, PermanentError, TemporaryError, Type, defineResource } from "kubeloop";

export const Task = defineResource({
  group: "examples.kubeloop.dev",
  version: "v1",
  kind: "Task",
  spec: Type.Object({ config: Type.String(), command: Type.String() }),
  status: Type.Unknown(),
});

export const op = new Operator({ name: "tasks" });
// What the handler does by hand, for the generated RBAC: it reads ConfigMaps.
op.permissions({ group: "", resource: "configmaps", verbs: ["get"] });

op.on.create(
  Task,
  async function run({ object, spec, client, retries }) {
    if (!spec.command.trim()) throw new PermanentError("spec.command is empty: nothing to run");
    try {
      const config = await client.resource(ConfigMap).namespace(object.metadata?.namespace as string).get(spec.config);
      return { ran: spec.command, with: config.data ?? {}, attempts: retries + 1 };
    } catch (error) {
      if (error instanceof NotFoundError) throw new TemporaryError(`ConfigMap ${spec.config} does not exist yet`, { delayMs: 1_000 });
      throw error; // anything else: retried with backoff
    }
  },
  { attempts: 21 },
);

export default op;

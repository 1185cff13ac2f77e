// 10 — minimal: one custom resource, one create handler. Its return value lands in
// status.greet; the handler runs once per object, even across operator restarts.
import { Operator, Type, defineResource } from "kubeloop";

export const Greeting = defineResource({
  group: "examples.kubeloop.dev",
  version: "v1",
  kind: "Greeting",
  spec: Type.Object({ name: Type.String({ minLength: 1 }) }),
  status: Type.Unknown(),
});

export const op = new Operator({ name: "greetings" });

op.on.create(Greeting, async function greet({ spec, logger }) {
  logger.info(`greeting ${spec.name}`);
  return { message: `hello, ${spec.name}` };
});

export default op;

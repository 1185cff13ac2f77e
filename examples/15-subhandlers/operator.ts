// 15 — sub-handlers: one create handler declares a sub-handler per member of a Team; each
// provisions that member's ConfigMap with its own id ("provision/<member>"), progress, retries
// and result. A member that is not ready yet is retried on its own; the others are not run
// again, even after the operator is killed between members.
import { ConfigMap, Operator, TemporaryError, Type, defineResource } from "kubeloop";

export const Team = defineResource({
  group: "examples.kubeloop.dev",
  version: "v1",
  kind: "Team",
  spec: Type.Object({ members: Type.Array(Type.String()) }),
  status: Type.Unknown(),
});

export const op = new Operator({ name: "teams" });
// What the sub-handlers do by hand, for the generated RBAC: they create ConfigMaps.
op.permissions({ group: "", resource: "configmaps", verbs: ["create"] });

op.on.create(Team, async function provision({ spec, meta, subhandler, client }) {
  for (const member of spec.members) {
    subhandler(member, async ({ retries, logger, signal }) => {
      process.stdout.write(`SUB ${member}\n`); // for the restart test
      // A member whose mailbox is "not ready" the first two times (a stand-in for a slow system).
      if (member.startsWith("flaky") && retries < 2) throw new TemporaryError(`${member} not ready`, { delayMs: 200 });
      // A member that hangs when asked (HANG_MEMBER), so a test can kill the operator mid-way.
      if (process.env.HANG_MEMBER === member) await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
      await client.resource(ConfigMap).namespace(meta.namespace ?? "default").create({ metadata: { name: `${meta.name}-${member}` }, data: { member } });
      logger.info(`provisioned ${member}`);
      return { configMap: `${meta.name}-${member}`, attempts: retries + 1 };
    });
  }
  return { members: spec.members.length };
});

export default op;

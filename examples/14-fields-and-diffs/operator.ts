// 14 — fields and diffs: an update handler gets the list of changes since the object was last
// handled (even if they happened while the operator was down); a field handler fires only
// when one field changes, with its old and new values; filters pick which objects a handler sees.
import { Operator, PRESENT, Type, defineResource, type DiffOp } from "kubeloop";

export const Setting = defineResource({
  group: "examples.kubeloop.dev",
  version: "v1",
  kind: "Setting",
  spec: Type.Object({ level: Type.Integer(), owner: Type.Optional(Type.String()), notes: Type.Optional(Type.String()) }),
  status: Type.Unknown(),
});

export const op = new Operator({ name: "settings" });

op.on.create(Setting, async function created() {
  return "seen";
});

op.on.update(Setting, async function changes({ diff }) {
  return diff.map((d: DiffOp) => `${d.op} ${d.path.join(".")}: ${JSON.stringify(d.old)} → ${JSON.stringify(d.new)}`);
});

op.on.field(
  Setting,
  "spec.level",
  async function levelRaised({ old, new: level, logger }) {
    logger.info(`level raised from ${String(old)} to ${String(level)}`); // also an Event on the Setting (reason Logging)
    return { from: old ?? null, to: level };
  },
  { value: (v) => typeof v === "number" && v >= 5, labels: { audited: PRESENT } },
);

export default op;

// 16 — admission and conversion webhooks: a Budget is validated (no negative amounts; a warning
// above a million), mutated (currency upper-cased, a label), and served in two versions (v1 in
// cents, v2 with amount and currency) converted by the operator. The API server calls the
// operator over HTTPS; the operator makes its certificate and registers its webhooks itself.
import { AdmissionError, Operator, Type, defineResource } from "kubeloop";

export const Budget = defineResource({
  group: "examples.kubeloop.dev",
  version: "v2",
  kind: "Budget",
  spec: Type.Object({ amount: Type.Integer(), currency: Type.String() }),
  versions: { v1: { spec: Type.Object({ cents: Type.Integer() }), deprecated: "Budget v1 is deprecated: use v2" } },
});

export const op = new Operator({ name: "budgets" });

op.on.validate(Budget, ({ object }) => {
  const amount = object?.spec.amount ?? 0;
  if (amount < 0) throw new AdmissionError(`amount ${amount} must not be negative`, { code: 422, reason: "Invalid" });
  if (amount > 1_000_000) return [`a budget of ${amount} needs approval`];
  return [];
});

op.on.mutate(Budget, ({ object }) => {
  object.spec.currency = object.spec.currency.toUpperCase();
  object.metadata = { ...object.metadata, labels: { ...object.metadata?.labels, currency: object.spec.currency } };
});

type V1 = { spec: { cents: number } };
type V2 = { spec: { amount: number; currency: string } };
op.convert(Budget, { from: "v1", to: "v2", fn: (o) => ({ ...o, spec: { amount: Math.round((o as unknown as V1).spec.cents / 100), currency: "EUR" } }) });
op.convert(Budget, { from: "v2", to: "v1", fn: (o) => ({ ...o, spec: { cents: (o as unknown as V2).spec.amount * 100 } }) });

export default op;

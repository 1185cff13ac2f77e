// The kinds an operator reads through ctx.cache, found in its source (and its local imports),
// and the RBAC `kubeloop generate rbac` makes of them.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { packageRoot } from "../testing/package-root.js";
import { operatorManifests } from "../operator/manifests.js";
import { findCacheReads } from "./cache-reads.js";
import { loadOperator } from "./load.js";

const dir = mkdtempSync(join(packageRoot(), "test", "fixtures", "cache-reads-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const kubeloop = pathToFileURL(join(packageRoot(), "src", "entries", "index.ts")).href;

describe("cache reads in an operator's source", () => {
  it("finds built-in and own kinds read through ctx.cache (in local imports too), reports what it cannot tell, and the generated RBAC lets the operator watch them", async () => {
    mkdirSync(join(dir, "lib"), { recursive: true });
    writeFileSync(join(dir, "lib", "kinds.ts"), `import { Type, defineResource } from "${kubeloop}";
export const Widget = defineResource({ group: "reads.kubeloop.dev", version: "v1", kind: "Widget", spec: Type.Object({}) });
`);
    writeFileSync(join(dir, "lib", "reconcile.ts"), `import { Secret } from "${kubeloop}";
import type { ReconcileContext, KubeObject } from "${kubeloop}";
export async function check(ctx: ReconcileContext<KubeObject>, kind: never): Promise<void> {
  await ctx.cache.get(Secret, "s", "ns");
  await ctx.cache.list(kind);
}
`);
    writeFileSync(join(dir, "operator.ts"), `import { ConfigMap, Operator } from "${kubeloop}";
import { Widget as W } from "./lib/kinds.js";
import { check } from "./lib/reconcile.js";
export const op = new Operator({ name: "reads" });
op.controller(ConfigMap).reconcile(async (ref, { cache, ...ctx }) => {
  await cache.list<typeof W extends never ? never : any>(W, { namespace: ref.namespace });
  await check({ cache, ...ctx } as never, undefined as never);
});
`);
    const reads = await findCacheReads(join(dir, "operator.ts"));
    assert.deepEqual(reads.kinds.map((k) => `${k.kind.kind} ${k.where}`).sort(), ["Secret lib/reconcile.ts:4", "Widget operator.ts:6"]);
    assert.deepEqual(reads.unknown, [{ name: "kind", where: "lib/reconcile.ts:5" }]);
    assert.equal(reads.finalizers, false, "no ctx.finalizer call");

    const { operator, crds } = await loadOperator(join(dir, "operator.ts"));
    const rbac = operatorManifests("rbac", operator, crds, { namespace: "ops", image: "x", cacheReads: reads.kinds.map((k) => k.kind), finalizers: reads.finalizers });
    const rules = rbac.flatMap((o) => ((o as { rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }).rules ?? []));
    const own = rules.find((r) => r.apiGroups.includes("") && r.resources.includes("configmaps"));
    assert.deepEqual(own?.verbs.slice().sort(), ["get", "list", "watch"], "no patch on the controller's own kind without ctx.finalizer");
    for (const [group, resource] of [["", "secrets"], ["reads.kubeloop.dev", "widgets"]] as const) {
      const rule = rules.find((r) => r.apiGroups.includes(group) && r.resources.includes(resource));
      assert.ok(rule, `a rule for ${resource}: ${JSON.stringify(rules)}`);
      for (const verb of ["get", "list", "watch"]) assert.ok(rule.verbs.includes(verb), `${verb} ${resource}`);
    }
  });
});

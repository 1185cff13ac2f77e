// `kubeloop generate <part> <operator.ts>`: manifests derived from the operator's own code.
//   rbac     ServiceAccount, Roles / ClusterRole and bindings: exactly what the operator needs
//   crds     the CustomResourceDefinitions it declares (defineResource)
//   deploy   Deployment, Service, PodDisruptionBudget
//   all      every part into -o DIR, with a kustomization.yaml and a Helm chart (DIR/chart)
// One part goes to stdout as multi-document YAML, or to DIR/<part>.yaml with -o.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import * as YAML from "yaml";
import { VERSION } from "../core/version.js";
import { deployManifests, helmChart, kustomization } from "../manifests/deploy.js";
import { rbacManifests } from "../manifests/rbac.js";
import type { Operator } from "../operator/operator.js";
import { loadOperator } from "./load.js";

export const USAGE = `usage: kubeloop generate <rbac|crds|deploy|all> <operator.ts> [-o DIR] [--namespace NS] [--image IMAGE] [--replicas N]

  rbac     ServiceAccount, Roles (one per served namespace) or a ClusterRole, and bindings,
           computed from what the operator registered plus op.permissions()
  crds     the CustomResourceDefinitions the operator declares
  deploy   Deployment (non-root, read-only root filesystem, probes), Service, PodDisruptionBudget
  all      all of them into DIR (-o required), plus kustomization.yaml and a Helm chart in DIR/chart
  -o DIR               write DIR/<part>.yaml instead of standard output
      --namespace NS   where the operator runs; default "default"
      --image IMAGE    the operator image; default <operator name>:latest
      --replicas N     default 2 with leader election, else 1
`;

const PARTS = ["rbac", "crds", "deploy"] as const;
type Part = (typeof PARTS)[number];

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { output: { type: "string", short: "o" }, namespace: { type: "string" }, image: { type: "string" }, replicas: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [part, file] = positionals;
  if (!file || !(part === "all" || (PARTS as readonly string[]).includes(part ?? "")) || (part === "all" && !values.output)) {
    process.stderr.write(USAGE);
    return 2;
  }
  const loaded = await loadOperator(file);
  const settings = { namespace: values.namespace ?? "default", image: values.image ?? `${loaded.operator.name}:latest`, ...(values.replicas ? { replicas: Number(values.replicas) } : {}) };
  const render = (p: Part, s: typeof settings) => manifests(p, loaded.operator, loaded.crds, s).map((o) => YAML.stringify(o, { aliasDuplicateObjects: false })).join("---\n");
  const write = (path: string, text: string) => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  };
  if (part !== "all") {
    const text = render(part as Part, settings);
    if (values.output) write(join(values.output, `${part}.yaml`), text);
    else process.stdout.write(text);
    return 0;
  }
  const dir = values.output as string;
  const files = PARTS.map((p) => `${p}.yaml`);
  for (const p of PARTS) write(join(dir, `${p}.yaml`), render(p, settings));
  write(join(dir, "kustomization.yaml"), kustomization(files, settings.namespace));
  // The chart: rendered with a sentinel namespace that becomes {{ .Release.Namespace }}.
  const sentinel = "kubeloop-chart-namespace";
  const replicas = settings.replicas ?? (loaded.operator.usesLeaderElection ? 2 : 1);
  const chart = helmChart(loaded.operator.name, VERSION, Object.fromEntries(PARTS.map((p) => [`${p}.yaml`, render(p, { ...settings, namespace: sentinel, replicas })])), { image: settings.image, replicas, namespace: sentinel });
  for (const [name, text] of Object.entries(chart)) write(join(dir, "chart", name), text);
  process.stderr.write(`kubeloop generate: wrote ${files.join(", ")}, kustomization.yaml and chart/ to ${dir}\n`);
  return 0;
}

/** One part's objects. */
export function manifests(part: Part, operator: Operator, crds: readonly object[], s: { namespace: string; image: string; replicas?: number }): object[] {
  switch (part) {
    case "rbac":
      return rbacManifests(operator.access(s.namespace), { name: operator.name, namespace: s.namespace, ...(operator.servedNamespaces ? { namespaces: operator.servedNamespaces } : {}) });
    case "crds":
      return [...crds];
    case "deploy":
      return deployManifests({ name: operator.name, namespace: s.namespace, image: s.image, leaderElection: operator.usesLeaderElection, webhooks: operator.hasWebhooks, ...(s.replicas ? { replicas: s.replicas } : {}) });
  }
}

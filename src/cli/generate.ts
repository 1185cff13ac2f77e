// `kubeloop generate <part> <operator.ts>`: manifests derived from the operator's own code.
//   rbac     ServiceAccount, Roles / ClusterRole and bindings: exactly what the operator needs
//   crds     the CustomResourceDefinitions it declares (defineResource)
//   deploy   Deployment, Service, PodDisruptionBudget
//   webhooks (--webhooks cert-manager) Issuer, Certificate, webhook configurations
//   all      every part into -o DIR, with a kustomization.yaml and a Helm chart (DIR/chart)
// One part goes to stdout as multi-document YAML, or to DIR/<part>.yaml with -o.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { parsed, UsageError } from "./args.js";
import * as YAML from "yaml";
import { VERSION } from "../core/version.js";
import { defaultReplicas, helmChart, kustomization } from "../manifests/deploy.js";
import { operatorManifests } from "../operator/manifests.js";
import { typesFromCrd } from "../manifests/types.js";
import { Client } from "../client/client.js";
import { CustomResourceDefinition as CustomResourceDefinitionKind } from "../core/builtins.js";
import type { CustomResourceDefinition } from "../core/kube/apiextensions/v1.js";
import { loadOperator } from "./load.js";
import { findCacheReads } from "./cache-reads.js";

export const USAGE = `usage: kubeloop generate <rbac|crds|deploy|webhooks|all> <operator.ts> [-o DIR] [--namespace NS] [--image IMAGE]
                        [--replicas N] [--webhooks managed|cert-manager]
       kubeloop generate types <crd.yaml | group/Kind> [-o DIR] [--kubeconfig FILE]

  rbac     ServiceAccount, Roles (one per served namespace) or a ClusterRole, and bindings,
           computed from what the operator registered plus op.permissions()
  crds     the CustomResourceDefinitions the operator declares
  deploy   Deployment (non-root, read-only root filesystem, probes), Service, PodDisruptionBudget
  webhooks with --webhooks cert-manager: a self-signed Issuer, the Certificate for the Service,
           and the Validating/MutatingWebhookConfigurations calling the Service (CA injected
           by cert-manager)
  all      all of them into DIR (-o required), plus kustomization.yaml and a Helm chart in DIR/chart
  types    TypeBox schemas, object types and a kind descriptor for CRDs someone else defined: from
           a YAML file of CRDs, or group/Kind read from the cluster (one <kind>.ts each)
  -o DIR               write DIR/<part>.yaml instead of standard output
      --namespace NS   where the operator runs; default "default"
      --image IMAGE    the operator image; default <operator name>:latest
      --replicas N     default 3 sharded, 2 with leader election, else 1
      --webhooks MODE  managed (default): the operator makes its certificate and registers its
                       webhooks itself; cert-manager: manifests register them (the webhooks
                       part, conversion stanzas in the CRDs), the Deployment mounts the
                       certificate Secret, and the RBAC has no registration rules
`;

const PARTS = ["rbac", "crds", "deploy", "webhooks"] as const;
type Part = (typeof PARTS)[number];

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parsed(() =>
    parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { output: { type: "string", short: "o" }, namespace: { type: "string" }, image: { type: "string" }, replicas: { type: "string" }, webhooks: { type: "string" }, kubeconfig: { type: "string" }, help: { type: "boolean", short: "h" } },
    }),
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [part, file, ...extra] = positionals;
  const known = [...PARTS, "all", "types"];
  if (!part) throw new UsageError(`which part? one of ${known.join(", ")}`);
  if (!known.includes(part)) throw new UsageError(`unknown part '${part}': one of ${known.join(", ")}`);
  if (!file) throw new UsageError(part === "types" ? "from what? kubeloop generate types <crd.yaml | group/Kind>" : `from which operator? kubeloop generate ${part} <operator.ts>`);
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (part === "types") return types(file, values.output, values.kubeconfig);
  if (part === "all" && !values.output) throw new UsageError("all writes several files: name their directory with -o DIR");
  if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
  const mode = values.webhooks ?? "managed";
  if (mode !== "managed" && mode !== "cert-manager") throw new UsageError(`--webhooks ${mode}: expected managed or cert-manager`);
  if (part === "webhooks" && mode !== "cert-manager") throw new UsageError("webhooks: in managed mode (the default) the operator registers its webhooks itself; pass --webhooks cert-manager for manifests");
  if (values.replicas !== undefined && !/^\d+$/.test(values.replicas)) throw new UsageError(`--replicas ${values.replicas}: expected a whole number`);
  const loaded = await loadOperator(file);
  // Reads through ctx.cache start informers: their kinds need get, list and watch too.
  const reads = await findCacheReads(loaded.path);
  for (const u of reads.unknown) process.stderr.write(`kubeloop generate: ${u.where}: cannot tell which kind cache.get/list(${u.name}, …) reads: declare its access with op.permissions() if the RBAC lacks it\n`);
  const settings = { namespace: values.namespace ?? "default", image: values.image ?? `${loaded.operator.name}:latest`, webhooks: mode, cacheReads: reads.kinds.map((k) => k.kind), finalizers: reads.finalizers, ...(values.replicas ? { replicas: Number(values.replicas) } : {}) } as const;
  const render = (p: Part, s: typeof settings) => operatorManifests(p, loaded.operator, loaded.crds, s).map((o) => YAML.stringify(o, { aliasDuplicateObjects: false })).join("---\n");
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
  // The webhooks part only in cert-manager mode, and only when there are webhooks.
  const parts = PARTS.filter((p) => p !== "webhooks" || (mode === "cert-manager" && loaded.operator.hasWebhooks));
  const files = parts.map((p) => `${p}.yaml`);
  for (const p of parts) write(join(dir, `${p}.yaml`), render(p, settings));
  write(join(dir, "kustomization.yaml"), kustomization(files, settings.namespace));
  // The chart: rendered with a sentinel namespace that becomes {{ .Release.Namespace }}.
  const sentinel = "kubeloop-chart-namespace";
  const replicas = settings.replicas ?? defaultReplicas({ leaderElection: loaded.operator.usesLeaderElection, sharding: loaded.operator.usesSharding });
  const chart = helmChart(loaded.operator.name, VERSION, Object.fromEntries(parts.map((p) => [`${p}.yaml`, render(p, { ...settings, namespace: sentinel, replicas })])), { image: settings.image, replicas, namespace: sentinel });
  for (const [name, text] of Object.entries(chart)) write(join(dir, "chart", name), text);
  process.stderr.write(`kubeloop generate: wrote ${files.join(", ")}, kustomization.yaml and chart/ to ${dir}\n`);
  return 0;
}

/** `generate types`: from a YAML file of CRDs, or `group/Kind` read from the cluster. */
async function types(source: string, output: string | undefined, kubeconfig: string | undefined): Promise<number> {
  let crds: CustomResourceDefinition[];
  if (existsSync(source)) {
    crds = YAML.parseAllDocuments(readFileSync(source, "utf8"))
      .map((d) => d.toJS() as CustomResourceDefinition)
      .filter((d) => d?.kind === "CustomResourceDefinition");
    if (!crds.length) throw new Error(`${source} holds no CustomResourceDefinition`);
  } else {
    const slash = source.indexOf("/");
    if (slash < 0) throw new Error(`${source}: no such file, and not group/Kind`);
    const [group, kind] = [source.slice(0, slash), source.slice(slash + 1)];
    const client = await Client.load({ ...(kubeconfig ? { path: kubeconfig } : {}), rateLimit: false });
    try {
      crds = (await client.resource(CustomResourceDefinitionKind).list()).items.filter((c) => c.spec.group === group && c.spec.names.kind === kind);
    } finally {
      await client.close();
    }
    if (!crds.length) throw new Error(`the cluster has no CRD for ${group}/${kind}`);
  }
  for (const crd of crds) {
    const code = typesFromCrd(crd);
    if (output) {
      mkdirSync(output, { recursive: true });
      const file = join(output, `${crd.spec.names.singular ?? crd.spec.names.kind.toLowerCase()}.ts`);
      writeFileSync(file, code);
      process.stderr.write(`kubeloop generate: wrote ${file}\n`);
    } else {
      process.stdout.write(code);
    }
  }
  return 0;
}

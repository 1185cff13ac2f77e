// `kubeloop generate <part> <operator.ts>`: manifests derived from the operator's own code.
//   rbac   ServiceAccount, Roles / ClusterRole and bindings: exactly what the operator needs
//   crds   the CustomResourceDefinitions it declares (defineResource)
// Written as one multi-document YAML to stdout, or to <dir>/<part>.yaml with -o.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as YAML from "yaml";
import { rbacManifests } from "../manifests/rbac.js";
import { loadOperator } from "./load.js";

export const USAGE = `usage: kubeloop generate <rbac|crds> <operator.ts> [-o DIR] [--namespace NS]

  rbac   ServiceAccount, Roles (one per served namespace) or a ClusterRole, and bindings,
         computed from what the operator registered plus op.permissions()
  crds   the CustomResourceDefinitions the operator declares
  -o DIR               write DIR/<part>.yaml instead of standard output
      --namespace NS   where the operator runs (its ServiceAccount and Lease); default "default"
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, strict: true, options: { output: { type: "string", short: "o" }, namespace: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [part, file] = positionals;
  if (!file || (part !== "rbac" && part !== "crds")) {
    process.stderr.write(USAGE);
    return 2;
  }
  const { operator, crds } = await loadOperator(file);
  const namespace = values.namespace ?? "default";
  const objects =
    part === "rbac"
      ? rbacManifests(operator.access(namespace), { name: operator.name, namespace, ...(operator.servedNamespaces ? { namespaces: operator.servedNamespaces } : {}) })
      : crds;
  const text = objects.map((o) => YAML.stringify(o)).join("---\n");
  if (values.output) {
    mkdirSync(values.output, { recursive: true });
    writeFileSync(join(values.output, `${part}.yaml`), text);
    process.stderr.write(`kubeloop generate: wrote ${join(values.output, `${part}.yaml`)} (${objects.length} objects)\n`);
  } else {
    process.stdout.write(text);
  }
  return 0;
}

// `kubeloop run --dev` and `kubeloop dev --kubeconfig`: pause the operator of the same name that
// runs in the cluster while this process runs (see controller/dev-pause.ts for the protocol).
import type { Client } from "../client/client.js";
import { Deployment, Lease } from "../core/builtins.js";
import { ForbiddenError } from "../core/errors.js";
import { DevOverride } from "../controller/dev-pause.js";
import type { Operator } from "../operator/operator.js";

/**
 * Takes the operator's dev Lease and waits until the operator leading in the cluster paused (and every sharded replica of it let its buckets go).
 * Where its Leases are: `namespace` (--dev-namespace), else the operator's leader election
 * namespace, else where a Lease `<operator>-leader` is found in the cluster (generated manifests
 * put it in the operator's own namespace, whatever the developer's kubeconfig says), else the
 * client's namespace. Refuses, naming the problem, when several namespaces hold that Lease, and
 * when a Deployment of the operator runs with no Lease beside it (no leader election: it cannot
 * be paused, and both would act).
 */
export async function holdDevOverride(operator: Operator, client: Client, options: { namespace?: string; leaseMs?: number; log: (message: string) => void }): Promise<DevOverride> {
  const own = operator.leases(client.defaultNamespace);
  // The operator's own leader election namespace, when it names one; else where it is deployed.
  const namespace = options.namespace ?? (own.namespace !== client.defaultNamespace ? own.namespace : await findOperatorNamespace(client, operator.name, own.leader, options.log));
  const leases = operator.leases(namespace);
  return DevOverride.take(
    client,
    { namespace: leases.namespace, name: leases.dev },
    { leaderLease: { namespace: leases.namespace, name: leases.leader }, members: operator.name, ...(options.leaseMs ? { leaseDurationMs: options.leaseMs } : {}), log: options.log },
  );
}

/**
 * The namespace of a deployed operator's Leases: the one namespace holding its leader Lease
 * (`leader`, default `<name>-leader`), else the client's. Refuses, naming the problem, when several
 * namespaces hold it, or when a Deployment of the operator (label `app.kubernetes.io/name`) runs
 * with no Lease beside it (it cannot be paused).
 */
export async function findOperatorNamespace(client: Client, name: string, leader: string, log: (message: string) => void): Promise<string> {
  let found: string[];
  let deployed: string[];
  try {
    const leases = await client.resource(Lease).list({ fieldSelector: `metadata.name=${leader}` });
    found = [...new Set(leases.items.map((l) => l.metadata?.namespace ?? ""))].sort();
    const deployments = await client.resource(Deployment).list({ labelSelector: `app.kubernetes.io/name=${name}` });
    deployed = deployments.items.filter((d) => (d.spec?.replicas ?? 1) > 0).map((d) => d.metadata?.namespace ?? "");
  } catch (error) {
    if (!(error instanceof ForbiddenError)) throw error;
    log(`cannot list Leases in all namespaces (${error.message}): looking in ${client.defaultNamespace} only; pass --dev-namespace NS if the operator runs elsewhere`);
    return client.defaultNamespace;
  }
  if (found.length > 1) {
    throw new Error(`a Lease ${leader} is in several namespaces (${found.join(", ")}): pass --dev-namespace NS to say which operator to pause`);
  }
  const unpausable = deployed.filter((ns) => !found.includes(ns));
  if (unpausable.length) {
    throw new Error(
      `the Deployment ${name} runs in ${unpausable.join(", ")} with no Lease ${leader} beside it: it runs without leader election and cannot be paused, so it would act beside this dev run. Scale it to 0 first (kubectl scale deployment ${name} -n ${unpausable[0]} --replicas 0), or deploy it with leader election`,
    );
  }
  if (found[0] !== undefined && found[0] !== client.defaultNamespace) log(`the operator's Leases are in namespace ${found[0]}`);
  return found[0] ?? client.defaultNamespace;
}


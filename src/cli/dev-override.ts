// `kubeloop run --dev` and `kubeloop dev --kubeconfig`: pause the operator of the same name that
// runs in the cluster while this process runs (see controller/dev-pause.ts for the protocol).
import type { Client } from "../client/client.js";
import { DevOverride } from "../controller/dev-pause.js";
import type { Operator } from "../operator/operator.js";

/** Takes the operator's dev Lease and waits until the operator leading in the cluster paused. */
export function holdDevOverride(operator: Operator, client: Client, options: { namespace?: string; leaseMs?: number; log: (message: string) => void }): Promise<DevOverride> {
  const leases = operator.leases(options.namespace ?? client.defaultNamespace);
  return DevOverride.take(
    client,
    { namespace: leases.namespace, name: leases.dev },
    { leaderLease: { namespace: leases.namespace, name: leases.leader }, ...(options.leaseMs ? { leaseDurationMs: options.leaseMs } : {}), log: options.log },
  );
}

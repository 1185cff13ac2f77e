// 04 — state in CRDs: no database. An IP address allocator whose only state is a `Pool` custom
// resource (the pattern of kuryr-kubernetes): each `IPClaim` gets a free address from its pool;
// the allocation is recorded in the Pool's status with the Pool's resourceVersion, so two
// concurrent allocations can never hand out the same address: the loser gets a Conflict,
// re-reads the Pool and tries again. Deleting a claim releases its address (finalizer).
import { ConflictError, Operator, PermanentError, TemporaryError, Type, defineResource, type Client, type ObjectOf } from "kubeloop";

export const Pool = defineResource({
  group: "examples.kubeloop.dev",
  version: "v1",
  kind: "Pool",
  spec: Type.Object({ cidr: Type.String({ pattern: "^\\d+\\.\\d+\\.\\d+\\.\\d+/\\d+$" }) }),
  status: Type.Object({ allocations: Type.Optional(Type.Record(Type.String(), Type.String())) }),
});

export const IPClaim = defineResource({
  group: "examples.kubeloop.dev",
  version: "v1",
  kind: "IPClaim",
  spec: Type.Object({ pool: Type.String() }),
  status: Type.Unknown(),
});

type PoolObject = ObjectOf<typeof Pool>;

/** Usable addresses of an IPv4 CIDR (without network and broadcast). */
export function addresses(cidr: string): string[] {
  const [base, bits] = cidr.split("/") as [string, string];
  const start = base.split(".").reduce((n, o) => n * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  if (size > 65_536) throw new PermanentError(`pool ${cidr} is too large for this example`);
  const out: string[] = [];
  for (let i = 1; i < size - 1; i++) {
    const n = (start & ~(size - 1)) + i;
    out.push([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join("."));
  }
  return out;
}

/**
 * Changes the pool's allocations with optimistic concurrency: read, change, write with the
 * read resourceVersion; on Conflict read again. Returns what `change` returned.
 */
async function updatePool<R>(client: Client, namespace: string, name: string, change: (pool: PoolObject, allocations: Record<string, string>) => R): Promise<R> {
  const pools = client.resource(Pool).namespace(namespace);
  for (let attempt = 1; ; attempt++) {
    const pool = await pools.get(name);
    const allocations = { ...(pool.status?.allocations ?? {}) };
    const result = change(pool, allocations);
    try {
      await pools.replaceStatus({ ...pool, status: { ...pool.status, allocations } }); // carries metadata.resourceVersion
      return result;
    } catch (error) {
      if (!(error instanceof ConflictError) || attempt >= 50) throw error;
    }
  }
}

export const op = new Operator({ name: "ip-allocator" });
// What the handlers do by hand, for the generated RBAC: they read Pools and write their status.
op.permissions({ group: "examples.kubeloop.dev", resource: "pools", verbs: ["get"] }, { group: "examples.kubeloop.dev", resource: "pools/status", verbs: ["update"] });

op.on.create(IPClaim, async function address({ object, spec, client, logger }) {
  const claim = `${object.metadata?.namespace}/${object.metadata?.name}`;
  const ip = await updatePool(client, object.metadata?.namespace as string, spec.pool, (pool, allocations) => {
    const existing = Object.entries(allocations).find(([, owner]) => owner === claim)?.[0];
    if (existing) return existing; // a retry after the write went through
    const free = addresses(pool.spec.cidr).find((a) => !allocations[a]);
    if (!free) throw new TemporaryError(`pool ${spec.pool} is exhausted`, { delayMs: 2_000 });
    allocations[free] = claim;
    return free;
  });
  logger.info(`allocated ${ip}`);
  return ip; // → status.address
});

op.on.delete(IPClaim, async function release({ object, spec, client }) {
  const claim = `${object.metadata?.namespace}/${object.metadata?.name}`;
  await updatePool(client, object.metadata?.namespace as string, spec.pool, (_pool, allocations) => {
    for (const [ip, owner] of Object.entries(allocations)) if (owner === claim) delete allocations[ip];
  });
});

export default op;

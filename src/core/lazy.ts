// Dependencies loaded on first use rather than when kubeloop is imported (yaml, prom-client):
// a program that never reads YAML or serves metrics does not load them. Both ship CommonJS for
// Node, so they load synchronously where they are needed.
import { createRequire } from "node:module";

const load = createRequire(import.meta.url);

/** A getter that loads the CommonJS module `name` on its first call and returns it ever after. */
export function onFirstUse<M>(name: string): () => M {
  let loaded: M | undefined;
  return () => (loaded ??= load(name) as M);
}

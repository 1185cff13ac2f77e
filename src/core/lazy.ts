// Dependencies loaded on first use rather than when kubeloop is imported (yaml, prom-client):
// a program that never reads YAML or serves metrics does not load them. Both ship CommonJS for
// Node, so they load synchronously where they are needed.
import { createRequire } from "node:module";

const load = createRequire(import.meta.url);

/** A module getter; see {@link onFirstUse}. */
export interface Lazy<M> {
  (): M;
  /** Whether the module is loaded (by a call, or supplied). */
  readonly loaded: boolean;
  /**
   * Supplies the module, loaded some other way (an awaited `import()`: in the published bundle
   * that is one chunk, faster than requiring the package's own files), so no call loads it.
   */
  provide(module: M): void;
}

/** A getter that loads the CommonJS module `name` on its first call and returns it ever after. */
export function onFirstUse<M>(name: string): Lazy<M> {
  let module: M | undefined;
  const get = () => (module ??= load(name) as M);
  return Object.defineProperties(get, {
    loaded: { get: () => module !== undefined },
    provide: { value: (m: M) => void (module ??= m) },
  }) as Lazy<M>;
}

// Dependencies loaded on first use rather than when kubeloop is imported (yaml, prom-client,
// pino): a program that never reads YAML or serves metrics does not load them. All three ship
// CommonJS for Node, so they load synchronously where they are needed.
import { createRequire } from "node:module";
import type { DestinationStream, Logger, LoggerOptions, pino as PinoFactory } from "pino";

const load = createRequire(import.meta.url);

/** A module getter; see {@link onFirstUse}. */
export interface Lazy<M> {
  (): M;
  /** Whether the module is loaded (by a call, or supplied). */
  readonly loaded: boolean;
  /**
   * Supplies the module, loaded some other way (an awaited `import()`), so no call loads it.
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

const pinoModule = onFirstUse<typeof PinoFactory>("pino");

/**
 * pino's logger factory, with pino loaded on the first call: a logger is made when a Manager, a
 * controller or an operator starts, so importing kubeloop does not load pino (~15 ms).
 */
export function pino(options: LoggerOptions = {}, stream?: DestinationStream): Logger {
  return pinoModule()(options, stream);
}

/**
 * A getter for the CommonJS module `name` that may not be installed (an optional peer
 * dependency): loaded on its first call, undefined ever after when it is missing.
 */
export function optionalModule<M>(name: string): () => M | undefined {
  let module: M | null | undefined;
  return () => {
    if (module === undefined) {
      try {
        module = load(name) as M;
      } catch (error) {
        if ((error as { code?: string }).code !== "MODULE_NOT_FOUND") throw error;
        module = null;
      }
    }
    return module ?? undefined;
  };
}

// The yaml library, loaded on first use rather than when kubeloop is imported: an operator
// running in-cluster never reads YAML, and a program that writes no manifests never writes it
// (~20 ms and ~8 MiB at import otherwise). yaml's Node build is CommonJS, so it loads
// synchronously where it is needed.
import { createRequire } from "node:module";
import type * as Yaml from "yaml";

let loaded: typeof Yaml | undefined;

/** The `yaml` module (parse, stringify, documents). */
export function yaml(): typeof Yaml {
  return (loaded ??= createRequire(import.meta.url)("yaml") as typeof Yaml);
}

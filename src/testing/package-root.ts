// Where this package is installed. Files shipped beside the code (controlplane/, bin/) are
// found from the package root rather than from a module's own location: the published build
// bundles modules into entry files and shared chunks at other depths than src/ has.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

/**
 * The directory holding kubeloop's package.json: the checkout when run from src/, the installed
 * package when run from dist/. Throws if no ancestor of this module is the kubeloop package
 * (a copy of the code outside its package).
 */
export function packageRoot(): string {
  if (root) return root;
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && isKubeloop(manifest)) return (root = dir);
    if (dirname(dir) === dir) throw new Error(`kubeloop: no kubeloop package.json above ${start}`);
  }
}

function isKubeloop(manifest: string): boolean {
  try {
    return (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === "kubeloop";
  } catch {
    return false;
  }
}

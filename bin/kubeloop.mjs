#!/usr/bin/env node
// The kubeloop command. Installed as a dependency (under node_modules) it runs the compiled
// dist/; in a source checkout it runs src/ through tsx, so a stale dist/ never shadows the
// code being edited and no build step is needed while developing.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const compiled = new URL("../dist/cli/main.js", import.meta.url);
const source = new URL("../src/cli/main.ts", import.meta.url);
const installed = fileURLToPath(import.meta.url).split(/[\\/]/).includes("node_modules");
if (existsSync(compiled) && (installed || !existsSync(source))) {
  await import(compiled.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(source.href);
}

#!/usr/bin/env node
// The kubeloop command. A published package runs the compiled dist/; a source checkout
// (no dist/) runs src/ through tsx, so no build step is needed while developing.
import { existsSync } from "node:fs";

const compiled = new URL("../dist/cli/main.js", import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(new URL("../src/cli/main.ts", import.meta.url).href);
}

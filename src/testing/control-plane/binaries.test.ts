// The build cache, exercised with the real Go toolchain on a tiny module (a second or two),
// not the real control plane (minutes).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { execFileSync } from "node:child_process";
import { ControlPlaneError } from "./errors.js";
import * as binaries from "./binaries.js";

const scratch = mkdtempSync(join(tmpdir(), "kubeloop-build-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function tinyModule(dir: string, message: string): string {
  const src = join(scratch, dir);
  execFileSync("mkdir", ["-p", src]);
  writeFileSync(join(src, "go.mod"), "module example.test/tiny\n\ngo 1.22\n");
  writeFileSync(join(src, "main.go"), `package main\n\nimport "fmt"\n\nfunc main() { fmt.Println(${JSON.stringify(message)}) }\n`);
  return src;
}

describe("ensureControlPlaneBinary", () => {
  it("builds once, reuses the cache, and rebuilds when a source changes", { timeout: 120_000 }, async () => {
    const src = tinyModule("a", "one");
    const cacheDir = join(scratch, "cache");
    const messages: string[] = [];
    const onProgress = (m: string) => messages.push(m);

    const first = await binaries.ensureControlPlaneBinary({ sourceDir: src, cacheDir, onProgress });
    assert.ok(existsSync(first));
    assert.equal(execFileSync(first, { encoding: "utf8" }).trim(), "one");
    assert.ok(messages.some((m) => m.startsWith("building the local control plane")));

    messages.length = 0;
    const second = await binaries.ensureControlPlaneBinary({ sourceDir: src, cacheDir, onProgress });
    assert.equal(second, first);
    assert.deepEqual(messages, [], "no build on a cache hit");

    writeFileSync(join(src, "main.go"), 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("two") }\n');
    const third = await binaries.ensureControlPlaneBinary({ sourceDir: src, cacheDir, onProgress });
    assert.notEqual(third, first);
    assert.equal(execFileSync(third, { encoding: "utf8" }).trim(), "two");
  });

  it("reports each package compiled, out of those the build needs, and the time left", { timeout: 120_000 }, async () => {
    // Three packages of its own, with content no earlier run compiled (Go's cache has none of them).
    const src = tinyModule("progress", "progress");
    const salt = `${process.pid}-${Date.now()}`;
    for (const name of ["alpha", "beta", "gamma"]) {
      execFileSync("mkdir", ["-p", join(src, name)]);
      writeFileSync(join(src, name, `${name}.go`), `package ${name}\n\n// Salt ${salt}\nconst Name = ${JSON.stringify(name)}\n`);
    }
    writeFileSync(join(src, "main.go"), 'package main\n\nimport (\n\t"fmt"\n\t"example.test/tiny/alpha"\n\t"example.test/tiny/beta"\n\t"example.test/tiny/gamma"\n)\n\nfunc main() { fmt.Println(alpha.Name, beta.Name, gamma.Name) }\n');
    const seen: binaries.BuildProgress[] = [];
    const binary = await binaries.ensureControlPlaneBinary({ sourceDir: src, cacheDir: join(scratch, "cache-progress"), onBuildProgress: (p) => seen.push(p) });
    assert.equal(execFileSync(binary, { encoding: "utf8" }).trim(), "alpha beta gamma");
    // The three new packages are compiled and reported. (The main package may not be: only a
    // comment changed in what it imports, so Go can reuse its compiled form and only link it.)
    const names = seen.map((p) => p.current);
    for (const name of ["example.test/tiny/alpha", "example.test/tiny/beta", "example.test/tiny/gamma"]) assert.ok(names.includes(name), `${name} reported: ${names.join(", ")}`);
    assert.deepEqual(seen.map((p) => p.compiled), seen.map((_, i) => i + 1), "one report per package, in order");
    assert.ok(seen.every((p) => p.total >= 3 && p.compiled <= p.total && p.elapsedMs >= 0), JSON.stringify(seen));
  });

  it("builds once when several callers ask at the same time", { timeout: 120_000 }, async () => {
    const src = tinyModule("b", "shared");
    const cacheDir = join(scratch, "cache-concurrent");
    let builds = 0;
    const onProgress = (m: string) => {
      if (m.startsWith("building")) builds++;
    };
    const paths = await Promise.all([1, 2, 3].map(() => binaries.ensureControlPlaneBinary({ sourceDir: src, cacheDir, onProgress })));
    assert.equal(new Set(paths).size, 1);
    assert.equal(builds, 1);
  });

  it("reports a compile error with the compiler's output", { timeout: 120_000 }, async () => {
    const src = tinyModule("c", "x");
    writeFileSync(join(src, "main.go"), "package main\n\nfunc main() { undefinedThing() }\n");
    await assert.rejects(binaries.ensureControlPlaneBinary({ sourceDir: src, cacheDir: join(scratch, "cache-bad") }), (error: unknown) => {
      assert.ok(error instanceof ControlPlaneError);
      assert.equal(error.reason, "BuildFailed");
      assert.match(error.logTail.join("\n"), /undefined: undefinedThing/);
      return true;
    });
  });

  it("says Go is missing when there is no toolchain", async () => {
    const src = tinyModule("d", "x");
    await assert.rejects(
      binaries.ensureControlPlaneBinary({ sourceDir: src, cacheDir: join(scratch, "cache-nogo"), go: join(scratch, "no-go-here") }),
      (error: unknown) => error instanceof ControlPlaneError && error.reason === "GoNotFound" && /needs a Go toolchain/.test(error.message),
    );
  });

  it("takes prebuilt assets, and names a missing one", () => {
    const assets = join(scratch, "assets");
    execFileSync("mkdir", ["-p", assets]);
    assert.throws(() => binaries.prebuiltExecutables(assets), /assets.*etcd does not exist/);
    writeFileSync(join(assets, "etcd"), "");
    writeFileSync(join(assets, "kube-apiserver"), "");
    const found = binaries.prebuiltExecutables(assets);
    assert.equal(found.etcd.file, join(assets, "etcd"));
    assert.equal(found.kubeControllerManager, undefined);
  });
});

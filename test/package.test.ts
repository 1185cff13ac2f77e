// kubeloop as an installed dependency: the packed tarball ships the Go sources and the compiled
// entry points, `kubeloop/testing` starts a control plane from them, internals stay private.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, describe, it } from "node:test";
import { ensureControlPlaneBinary } from "../src/testing.js";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..");
const scratch = mkdtempSync(join(tmpdir(), "kubeloop-pack-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe("the npm package", () => {
  it("installs, and starts a control plane from its shipped Go sources", { timeout: 600_000 }, async () => {
    await run("npm", ["pack", "--silent", "--pack-destination", scratch], { cwd: root, maxBuffer: 1 << 24 });
    const tarball = readdirSync(scratch).find((f) => f.endsWith(".tgz"));
    assert.ok(tarball, "npm pack produced a tarball");
    const { stdout: listing } = await run("tar", ["-tzf", join(scratch, tarball)]);
    for (const file of ["controlplane/main.go", "controlplane/go.mod", "controlplane/go.sum", "dist/testing.js", "bin/kubeloop.mjs"]) {
      assert.ok(listing.includes(`package/${file}`), `${file} is in the package`);
    }
    assert.ok(!listing.includes(".test."), "no test files are shipped");

    const project = join(scratch, "user-project");
    await run("mkdir", ["-p", project]);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "user-project", private: true, type: "module" }));
    await run("npm", ["install", "--no-audit", "--no-fund", "--silent", join(scratch, tarball)], { cwd: project, maxBuffer: 1 << 24 });

    writeFileSync(
      join(project, "start.mjs"),
      `import { startControlPlane, ensureControlPlaneBinary } from "kubeloop/testing";
       const binary = await ensureControlPlaneBinary();
       const cp = await startControlPlane({ kubeconfig: false, controllers: [] });
       console.log(JSON.stringify({ binary, server: cp.server, local: cp.local }));
       await cp.stop();`,
    );
    const { stdout } = await run(process.execPath, ["start.mjs"], { cwd: project, env: { ...process.env, KUBELOOP_KUBECONFIG: "" } });
    const result = JSON.parse(stdout.trim());
    assert.equal(result.local, true);
    assert.match(result.server, /^https:\/\/127\.0\.0\.1:\d+$/);
    // The shipped sources hash to the same cache entry as this checkout's: same Go code.
    assert.equal(result.binary, await ensureControlPlaneBinary());

    const { stdout: help } = await run("npx", ["--no-install", "kubeloop", "help"], { cwd: project });
    assert.match(help, /control-plane start/);

    writeFileSync(join(project, "private.mjs"), `await import("kubeloop/dist/core/pki.js");`);
    await assert.rejects(run(process.execPath, ["private.mjs"], { cwd: project }), /ERR_PACKAGE_PATH_NOT_EXPORTED/);

    // `kubeloop init`: a new project that installs, type-checks and passes its own test.
    const { stdout: created } = await run("npx", ["--no-install", "kubeloop", "init", "hello-op"], { cwd: project });
    assert.match(created, /created hello-op/);
    const generated = join(project, "hello-op");
    await run("npm", ["install", "--no-audit", "--no-fund", "--silent"], { cwd: generated, maxBuffer: 1 << 24 });
    // NODE_TEST_CONTEXT would make the project's node --test report to us instead of printing.
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const { stdout: tested } = await run("npm", ["test"], { cwd: generated, maxBuffer: 1 << 24, env });
    assert.match(tested, /pass 1/);
    assert.match(tested, /fail 0/);
    await assert.rejects(run("npx", ["--no-install", "kubeloop", "init", "hello-op"], { cwd: project }), /exists and is not empty/);
  });
});

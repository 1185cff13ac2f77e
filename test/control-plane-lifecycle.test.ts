// The control plane's life: restarts on a data dir, identities it issues, refusal of a data dir
// in use, failures that name the component, and no process outliving its parent.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ControlPlaneError, ensureControlPlaneBinary, startControlPlane } from "../src/entries/testing.js";
import { call, eventually, identityFromKubeconfig } from "./helpers.js";

const scratch = mkdtempSync(join(tmpdir(), "kubeloop-cp-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("control plane lifecycle", () => {
  it("keeps objects, address and identity across a restart on the same data dir", { timeout: 240_000 }, async () => {
    const dataDir = join(scratch, "persistent");
    const first = await startControlPlane({ kubeconfig: false, dataDir, controllers: [] });
    let second: Awaited<ReturnType<typeof startControlPlane>> | undefined;
    try {
      const admin = identityFromKubeconfig(first.kubeconfigPath);
      const made = await call(admin, "POST", "/api/v1/namespaces/default/configmaps", {
        metadata: { name: "survivor" },
        data: { answer: "42" },
      });
      assert.equal(made.status, 201);

      // A second control plane on a data dir in use is refused, naming the owner.
      await assert.rejects(startControlPlane({ kubeconfig: false, dataDir, controllers: [] }), (error: unknown) => {
        assert.ok(error instanceof ControlPlaneError);
        assert.equal(error.reason, "BadOptions");
        assert.match(error.message, /in use by a control plane of process/);
        return true;
      });

      // An identity the CA issues, with no RBAC bindings, is authenticated and forbidden.
      const nobody = await first.issueUser("nobody", ["some-group"]);
      const denied = await call(identityFromKubeconfig(nobody.kubeconfigPath), "GET", "/api/v1/namespaces/default/configmaps");
      assert.equal(denied.status, 403);
      assert.match(denied.body.message, /User "nobody" cannot list resource "configmaps"/);

      const pids = Object.values(first.pids);
      await first.stop();
      for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} still alive after stop()`);

      second = await startControlPlane({ kubeconfig: false, dataDir, controllers: [] });
      assert.equal(second.server, first.server, "the same address on restart");
      const again = identityFromKubeconfig(second.kubeconfigPath);
      const read = await call(again, "GET", "/api/v1/namespaces/default/configmaps/survivor");
      assert.equal(read.status, 200);
      assert.deepEqual(read.body.data, { answer: "42" });
      assert.equal(read.body.metadata.uid, made.body.metadata.uid);
      // Certificates issued before the restart are still trusted.
      const stillDenied = await call(identityFromKubeconfig(nobody.kubeconfigPath), "GET", "/api/v1/namespaces");
      assert.equal(stillDenied.status, 403);
    } finally {
      await first.stop();
      await second?.stop();
    }
  });

  it("names the component and shows its last log lines when one fails to start", { timeout: 120_000 }, async () => {
    await assert.rejects(
      startControlPlane({ kubeconfig: false, controllers: [], apiServerFlags: ["--no-such-flag=1"] }),
      (error: unknown) => {
        assert.ok(error instanceof ControlPlaneError);
        assert.equal(error.reason, "ComponentExited");
        assert.equal(error.component, "kube-apiserver");
        assert.match(error.logTail.join("\n"), /unknown flag: --no-such-flag/);
        assert.match(error.message, /kube-apiserver exited/);
        return true;
      },
    );
  });

  it("fails with NotReady when /readyz is not reached by the deadline, leaving nothing running", { timeout: 120_000 }, async () => {
    let error: unknown;
    try {
      await startControlPlane({ kubeconfig: false, controllers: [], startTimeoutMs: 1 });
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof ControlPlaneError, String(error));
    assert.equal(error.reason, "NotReady");
    assert.match(error.message, /kube-apiserver \/readyz was not reached before the deadline/);
  });

  it("ends every child when its parent process is killed with SIGKILL", { timeout: 180_000 }, async () => {
    const parent = spawn(process.execPath, ["--import", "tsx", "test/fixtures/start-and-wait.ts"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const { dataDir, ...pids } = await new Promise<Record<string, number> & { dataDir: string }>((resolve, reject) => {
      let out = "";
      parent.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0] as string));
      });
      parent.on("exit", (code) => reject(new Error(`fixture exited early (${code})`)));
    });
    for (const name of ["etcd", "kube-apiserver", "kube-controller-manager", "reaper"]) {
      assert.ok(pids[name] && alive(pids[name]), `${name} running before the kill`);
    }
    parent.kill("SIGKILL");
    await eventually(
      "every control plane process to end after its parent's SIGKILL",
      async () => Object.values(pids).every((pid) => !alive(pid)),
      { timeoutMs: 30_000 },
    );
    assert.ok(dataDir.includes("kubeloop-cp-"), dataDir);
    await eventually(`its temporary data dir ${dataDir} to be removed too`, async () => !existsSync(dataDir), { timeoutMs: 10_000 });
  });

  it("runs prebuilt binaries from an assets dir (KUBEBUILDER_ASSETS), without a controller manager", { timeout: 120_000 }, async () => {
    // An envtest-style directory: `etcd` and `kube-apiserver` executables, no controller manager.
    // Our multi-call binary answers to those names when linked under them.
    const binary = await ensureControlPlaneBinary();
    const assets = join(scratch, "assets");
    mkdirSync(assets);
    symlinkSync(binary, join(assets, "etcd"));
    symlinkSync(binary, join(assets, "kube-apiserver"));
    const progress: string[] = [];
    const cp = await startControlPlane({
      kubeconfig: false,
      env: { ...process.env, KUBEBUILDER_ASSETS: assets },
      onProgress: (m) => progress.push(m),
    });
    try {
      assert.deepEqual(Object.keys(cp.pids).sort(), ["etcd", "kube-apiserver", "reaper"]);
      assert.ok(progress.some((m) => m.includes(`prebuilt assets in ${assets}`)), progress.join("\n"));
      assert.ok(progress.some((m) => m.includes("no kube-controller-manager")), progress.join("\n"));
      const answer = await call(identityFromKubeconfig(cp.kubeconfigPath), "GET", "/api/v1/namespaces/default");
      assert.equal(answer.status, 200);
    } finally {
      await cp.stop();
    }
  });

  it("uses an existing cluster when given its kubeconfig, and reports a bad one by name", async () => {
    const file = join(scratch, "existing.kubeconfig");
    writeFileSync(
      file,
      [
        "apiVersion: v1",
        "kind: Config",
        "current-context: c",
        "contexts: [{name: c, context: {cluster: k, user: u}}]",
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]",
        "users: [{name: u, user: {token: t}}]",
      ].join("\n"),
    );
    const existing = await startControlPlane({ kubeconfig: file });
    assert.equal(existing.local, false);
    assert.equal(existing.server, "https://127.0.0.1:1");
    await existing.stop();
    await assert.rejects(existing.issueUser("x"), /cannot issue users on an existing cluster/);

    const viaEnv = await startControlPlane({ env: { KUBELOOP_KUBECONFIG: file } });
    assert.equal(viaEnv.kubeconfigPath, file);

    await assert.rejects(startControlPlane({ kubeconfig: join(scratch, "missing") }), /cannot read the kubeconfig .*missing/);
    const broken = join(scratch, "broken.kubeconfig");
    writeFileSync(broken, "current-context: nowhere\nclusters: []\n");
    await assert.rejects(startControlPlane({ kubeconfig: broken }), /has no server for its current-context 'nowhere'/);
  });
});

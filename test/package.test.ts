// kubeloop as an installed dependency: the packed tarball ships the Go sources and the compiled
// entry points, `kubeloop/testing` starts a control plane from them, internals stay private.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, describe, it } from "node:test";
import { ensureControlPlaneBinary } from "../src/entries/testing.js";
import { Client, Namespace } from "../src/entries/index.js";
import { call, eventually, identityFromKubeconfig, releaseSharedCluster, sharedCluster } from "./helpers.js";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..");
const scratch = mkdtempSync(join(tmpdir(), "kubeloop-pack-test-"));
after(async () => {
  rmSync(scratch, { recursive: true, force: true });
  await releaseSharedCluster();
});

describe("the npm package", () => {
  it("installs, and starts a control plane from its shipped Go sources", { timeout: 600_000 }, async () => {
    await run("npm", ["pack", "--silent", "--pack-destination", scratch], { cwd: root, maxBuffer: 1 << 24 });
    const tarball = readdirSync(scratch).find((f) => f.endsWith(".tgz"));
    assert.ok(tarball, "npm pack produced a tarball");
    const { stdout: listing } = await run("tar", ["-tzf", join(scratch, tarball)]);
    for (const file of ["controlplane/main.go", "controlplane/go.mod", "controlplane/go.sum", "dist/testing.js", "bin/kubeloop.mjs", "LICENSE", "docs/deploy.md"]) {
      assert.ok(listing.includes(`package/${file}`), `${file} is in the package`);
    }
    assert.ok(!listing.includes(".test."), "no test files are shipped");
    // The README's relative links resolve inside the package (npm shows it on the registry page).
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const unshipped = [...readme.matchAll(/\]\(([^)#]+)\)/g)].map((m) => m[1] as string).filter((l) => !/^[a-z]+:/.test(l) && !listing.includes(`package/${l}`));
    assert.deepEqual(unshipped, [], "README links to files the package does not ship");
    // What npm would publish, and nothing it would have to correct (a bin path it rewrites, say).
    const { stderr: publishing } = await run("npm", ["publish", "--dry-run", "--ignore-scripts"], { cwd: root, maxBuffer: 1 << 24 });
    const warnings = publishing.split("\n").filter((l) => /npm warn/i.test(l) && !/requires you to be logged in/.test(l));
    assert.deepEqual(warnings, [], "npm publish --dry-run warns of nothing but the missing login");

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

    // The bundle: every chunk loads (the webhook certificates' chunk is otherwise loaded only
    // when an operator serves webhooks), and the licences of the bundled packages ship with it.
    writeFileSync(
      join(project, "chunks.mjs"),
      `import { readdirSync } from "node:fs";
       const dir = new URL("./node_modules/kubeloop/dist/chunks/", import.meta.url);
       const files = readdirSync(dir).filter((f) => f.endsWith(".js"));
       for (const f of files) await import(new URL(f, dir).href);
       const { createCertificateAuthority } = await import(new URL(files.find((f) => f.startsWith("pki-")), dir).href);
       const ca = await createCertificateAuthority("package-test");
       console.log(JSON.stringify({ chunks: files.length, ca: ca.certificate.split("\\n")[0] }));`,
    );
    const chunks = JSON.parse((await run(process.execPath, ["chunks.mjs"], { cwd: project })).stdout.trim());
    assert.ok(chunks.chunks > 1, "shared code is split into chunks");
    assert.equal(chunks.ca, "-----BEGIN CERTIFICATE-----");
    // Each package is declared or bundled, never both (scripts/build.ts): what runs is what npm
    // ls shows. The declared ones are installed and are the copies kubeloop uses; the bundled ones
    // are not installed, and their licences ship in the notices.
    const notices = readFileSync(join(project, "node_modules/kubeloop/dist/THIRD-PARTY-NOTICES.md"), "utf8");
    const { dependencies, peerDependencies } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { dependencies: Record<string, string>; peerDependencies: Record<string, string> };
    for (const bundled of ["undici", "@peculiar/x509", "fast-json-patch", "chokidar", "reflect-metadata"]) {
      assert.match(notices, new RegExp(`^## ${bundled} `, "m"));
      assert.ok(!(bundled in dependencies), `${bundled} is bundled, so not declared`);
      assert.ok(!existsSync(join(project, "node_modules", bundled)), `${bundled} is bundled, so not installed`);
    }
    for (const name of Object.keys(dependencies)) {
      assert.doesNotMatch(notices, new RegExp(`^## ${name} `, "m"), `${name} is declared, so not bundled`);
      assert.ok(existsSync(join(project, "node_modules", name)), `${name} is installed`);
    }
    // The optional peers (tsx for .ts operators, OpenTelemetry's API and Node SDK for traces) come only when asked for.
    assert.deepEqual(Object.keys(peerDependencies).sort(), ["@opentelemetry/api", "@opentelemetry/sdk-node", "tsx"]);
    for (const peer of ["tsx", "@opentelemetry/sdk-node"]) assert.ok(!existsSync(join(project, "node_modules", peer)), `${peer} is an optional peer, not installed with kubeloop`);
    writeFileSync(join(project, "same.mjs"), `import { Type } from "kubeloop"; import { Type as Own } from "@sinclair/typebox"; console.log(Type === Own);`);
    assert.equal((await run(process.execPath, ["same.mjs"], { cwd: project })).stdout.trim(), "true", "kubeloop's TypeBox is the installed one");
    // Without tsx, a TypeScript operator gets an error that says what to do (exit 1), not a stack.
    writeFileSync(join(project, "op.ts"), `import { Operator } from "kubeloop";\nexport default new Operator({ name: "no-tsx" });\n`);
    const noTsx = await run("npx", ["--no-install", "kubeloop", "run", "op.ts"], { cwd: project }).then(() => undefined, (error: { code?: number; stderr?: string }) => error);
    assert.equal(noTsx?.code, 1);
    assert.match(noTsx?.stderr ?? "", /op\.ts is TypeScript, which kubeloop runs through tsx, and tsx is not installed: `npm install --save-dev tsx`/);

    // CommonJS code can require() it too (Node 22.12 and later load an ES module without top-level await so).
    writeFileSync(join(project, "cjs.cjs"), `const k = require("kubeloop"); const t = require("kubeloop/testing"); console.log(typeof k.Operator, typeof t.startControlPlane);`);
    assert.equal((await run(process.execPath, ["cjs.cjs"], { cwd: project })).stdout.trim(), "function function");
    writeFileSync(join(project, "private.mjs"), `await import("kubeloop/dist/core/pki.js");`);
    await assert.rejects(run(process.execPath, ["private.mjs"], { cwd: project }), /ERR_PACKAGE_PATH_NOT_EXPORTED/);

    // `kubeloop init`: a new project that installs, type-checks and passes its own test.
    // It depends on the published kubeloop unless told otherwise: here, the tarball under test.
    const { stdout: created } = await run("npx", ["--no-install", "kubeloop", "init", "hello-op", "--kubeloop", join(scratch, tarball)], { cwd: project });
    assert.match(created, /created hello-op/);
    const generated = join(project, "hello-op");
    await run("npm", ["install", "--no-audit", "--no-fund", "--silent"], { cwd: generated, maxBuffer: 1 << 24 });
    // The built-in kinds' types, generated from the v1.37 API server: fields new since 1.30 are
    // typed, unknown ones refused (the project's test runs tsc over its *.ts files).
    writeFileSync(
      join(generated, "k8s.ts"),
      `import type { PodSpec } from "kubeloop/k8s/core/v1";
import type { ListMeta } from "kubeloop/k8s/meta/v1";
export const spec: PodSpec = { containers: [{ name: "web", image: "nginx" }], hostnameOverride: "web-0" };
export const list: ListMeta = { shardInfo: { selector: "shardRange(object.metadata.uid, '0x0', '0x8')" } };
// @ts-expect-error no such field
export const wrong: PodSpec = { containers: [], notAField: 1 };
`,
    );
    // NODE_TEST_CONTEXT would make the project's node --test report to us instead of printing.
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const { stdout: tested } = await run("npm", ["test"], { cwd: generated, maxBuffer: 1 << 24, env });
    // On the Node this test runs on (scripts/node-versions.ts puts each supported one first on PATH).
    assert.equal((await run("node", ["--version"], { cwd: generated })).stdout.trim(), process.version, "the project ran on this test's Node");
    assert.match(tested, /pass 1/);
    assert.match(tested, /fail 0/);
    // And again on the same cluster, which keeps the first run's objects.
    assert.match((await run("npm", ["test"], { cwd: generated, maxBuffer: 1 << 24, env })).stdout, /pass 1/);
    // Fast by default: the test's own client has no client-side rate limit (it shared the operator's 5 requests/s).
    assert.match(readFileSync(join(generated, "operator.test.ts"), "utf8"), /Client\.load\(\{[^}]*rateLimit: false/);
    await assert.rejects(run("npx", ["--no-install", "kubeloop", "init", "hello-op"], { cwd: project }), /exists and is not empty/);

    // Its manifests and its image. The Dockerfile cannot be built here: it is linted, and the
    // runtime stage's steps run as a script (production dependencies only, tsx removed, the
    // built operator run by the image's entry point against the test cluster).
    await run("npm", ["run", "build", "--silent"], { cwd: generated, maxBuffer: 1 << 24 });
    await run("npm", ["run", "generate", "--silent"], { cwd: generated, maxBuffer: 1 << 24 });
    for (const f of ["crds.yaml", "rbac.yaml", "deploy.yaml", "kustomization.yaml", "chart/Chart.yaml"]) assert.ok(existsSync(join(generated, "manifests", f)), `manifests/${f}`);
    const dockerfile = readFileSync(join(generated, "Dockerfile"), "utf8");
    const stages = dockerfile.split(/^FROM /m).slice(1);
    assert.equal(stages.length, 2, "multi-stage: build, then runtime");
    const runtime = stages[1] ?? "";
    assert.match(runtime, /^node:24-/, "the runtime is the current Node LTS");
    assert.match(runtime, /^USER (?!0\b|root\b)\S+/m, "runs as a non-root user");
    assert.match(runtime, /npm ci --omit=dev/, "production dependencies only");
    assert.match(runtime, /^ENTRYPOINT \["node", "\/app\/node_modules\/kubeloop\/bin\/kubeloop.mjs"\]/m);
    assert.match(runtime, /^CMD \["run", "\/app\/dist\/operator.js"\]/m);
    // The image's /app: the built operator and production dependencies. kubeloop comes from the
    // packed tarball (as a project made with --kubeloop <tarball> copies it in; docs/deploy.md).
    const image = join(scratch, "image");
    await run("mkdir", ["-p", image]);
    await run("cp", ["-r", join(generated, "dist"), image]);
    writeFileSync(join(image, "package.json"), JSON.stringify({ name: "hello-op-image", private: true, type: "module", dependencies: { kubeloop: `file:${join(scratch, tarball)}` } }));
    await run("npm", ["install", "--omit=dev", "--no-audit", "--no-fund", "--silent"], { cwd: image, maxBuffer: 1 << 24 });
    rmSync(join(image, "node_modules", "tsx"), { recursive: true, force: true }); // proves it is not needed at run time
    const cluster = await sharedCluster();
    const ns = `pkg-${Date.now().toString(36)}`;
    const client = await Client.load({ path: cluster.kubeconfigPath, rateLimit: false });
    try {
      await client.resource(Namespace).create({ metadata: { name: ns } });
      const operator = execFile(process.execPath, [join(image, "node_modules/kubeloop/bin/kubeloop.mjs"), "run", join(image, "dist/operator.js"), "--kubeconfig", cluster.kubeconfigPath, "--install-crds", "--standalone", "-n", ns, "--metrics-bind", "0", "--health-bind", "0"], { cwd: image });
      let output = "";
      operator.stdout?.on("data", (d: Buffer) => (output += d.toString()));
      operator.stderr?.on("data", (d: Buffer) => (output += d.toString()));
      try {
        const hello = { apiVersion: "hello-op.example.com/v1", kind: "Hello", metadata: { name: "img" }, spec: { greeting: "from the image" } };
        const id = identityFromKubeconfig(cluster.kubeconfigPath);
        await eventually("the built operator replies", async () => {
          await call(id, "POST", `/apis/hello-op.example.com/v1/namespaces/${ns}/hellos`, hello);
          const got = await call(id, "GET", `/apis/hello-op.example.com/v1/namespaces/${ns}/hellos/img`);
          return got.body?.status?.reply?.reply === "from the image, back";
        }, { timeoutMs: 60_000, intervalMs: 500 }).catch((error: unknown) => {
          throw new Error(`${String(error)}\n${output.slice(-2000)}`);
        });
      } finally {
        operator.kill("SIGTERM");
      }
    } finally {
      await client.close();
    }
  });
});

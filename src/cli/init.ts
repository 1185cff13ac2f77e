// `kubeloop init <dir>`: a new operator project that type-checks, tests against a local
// control plane, and runs (`npm start` / `npm run dev`). It depends on the published kubeloop (a
// caret range of the version that made it); `--kubeloop SPEC` names another (a version, or a
// tarball or directory for developing kubeloop itself).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { packageRoot } from "../testing/package-root.js";
import { parsed, UsageError } from "./args.js";

export const USAGE = `usage: kubeloop init <dir> [--kubeloop SPEC]

Creates <dir> with operator.ts, its test (on a local control plane), package.json, tsconfig.json,
a Dockerfile and a README.
  --kubeloop SPEC   the kubeloop the project depends on: default ^<this version> from the npm
                    registry; a version or range, or a local tarball or directory (for working on
                    kubeloop itself: npm pack, then --kubeloop ./kubeloop-<version>.tgz)
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parsed(() => parseArgs({ args, allowPositionals: true, strict: true, options: { kubeloop: { type: "string" }, help: { type: "boolean", short: "h" } } }));
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [dir, ...extra] = positionals;
  if (!dir) throw new UsageError("where? kubeloop init <dir>");
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const target = resolve(dir);
  if (existsSync(target) && readdirSync(target).length > 0) throw new Error(`${dir} exists and is not empty`);
  const own = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as OwnManifest;
  const dependency = kubeloopSpec(values.kubeloop, own.version);
  const name = basename(target).toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "") || "my-operator";
  mkdirSync(target, { recursive: true });
  for (const [file, text] of Object.entries(projectFiles(name, dependency, own))) writeFileSync(join(target, file), text);
  process.stdout.write(`created ${dir}: cd ${dir} && npm install && npm test\n`);
  return 0;
}

/** The project's dependency on kubeloop: `^version`, a given version or range, or `file:` an existing local path. */
function kubeloopSpec(given: string | undefined, version: string): string {
  if (given === undefined) return `^${version}`;
  if (!given) throw new UsageError("--kubeloop needs a version, a range, or a path");
  const path = given.replace(/^file:/, "");
  if (given.startsWith("file:") || given.startsWith(".") || given.startsWith("/") || existsSync(path)) {
    if (!existsSync(path)) throw new UsageError(`--kubeloop ${given}: no such file or directory`);
    return `file:${resolve(path)}`;
  }
  return given;
}

/** kubeloop's own package.json: the versions a new project pins. */
interface OwnManifest {
  version: string;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/** The new project's files by name: `name` is the project's, `dependency` its spec of kubeloop. */
function projectFiles(name: string, dependency: string, own: OwnManifest): Record<string, string> {
  const local = dependency.startsWith("file:");
  return {
    "package.json": JSON.stringify(
      {
        name,
        private: true,
        type: "module",
        scripts: {
          start: "kubeloop run operator.ts",
          dev: "kubeloop dev operator.ts",
          typecheck: "tsc --noEmit",
          test: "tsc --noEmit && node --import tsx --test operator.test.ts",
          build: "tsc -p tsconfig.build.json",
          generate: "kubeloop generate all operator.ts -o manifests",
        },
        dependencies: { kubeloop: dependency },
        devDependencies: {
          tsx: own.peerDependencies?.tsx ?? "^4", // kubeloop's optional peer: `kubeloop run|dev operator.ts`
          typescript: own.devDependencies?.typescript ?? "~6.0.3",
          "@types/node": "^24", // the Node of its Dockerfile
        },
      },
      null,
      2,
    ) + "\n",
    "tsconfig.json": JSON.stringify(
      {
        compilerOptions: { target: "ES2022", lib: ["ES2023"], module: "NodeNext", moduleResolution: "NodeNext", types: ["node"], strict: true, skipLibCheck: true, noEmit: true },
        include: ["*.ts"],
      },
      null,
      2,
    ) + "\n",
    "operator.ts": `// ${name}: an operator made with kubeloop. \`npm run dev\` runs it on a local control plane.
import { Operator, Type, defineResource } from "kubeloop";

export const Hello = defineResource({
  group: "${name}.example.com",
  version: "v1",
  kind: "Hello",
  spec: Type.Object({ greeting: Type.String({ minLength: 1 }) }),
  status: Type.Unknown(),
});

export const op = new Operator({ name: "${name}" });

op.on.create(Hello, async function reply({ spec, logger }) {
  logger.info(\`got "\${spec.greeting}"\`);
  return { reply: \`\${spec.greeting}, back\` }; // → status.reply
});

export default op;
`,
    "tsconfig.build.json": JSON.stringify({ extends: "./tsconfig.json", compilerOptions: { noEmit: false, outDir: "dist" }, include: ["operator.ts"] }, null, 2) + "\n",
    Dockerfile: `# The operator image: built JavaScript, production dependencies, no TypeScript tooling at run
# time, a non-root user. kubeloop generate deploy runs it as: run /app/dist/operator.js ...
${local ? `# This project depends on a local kubeloop (${dependency}), which the build cannot see:
# copy that tarball into this directory and depend on it as "file:./<its name>" (npm ci then
# finds it), or depend on a published version.
` : ""}FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json operator.ts ./
RUN npm run build

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY --from=build /app/dist ./dist
USER 65532:65532
ENTRYPOINT ["node", "/app/node_modules/kubeloop/bin/kubeloop.mjs"]
CMD ["run", "/app/dist/operator.js"]
`,
    ".dockerignore": "node_modules/\ndist/\nmanifests/\n",
    "operator.test.ts": `// Runs the operator against a local control plane (started once for this file).
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, Namespace } from "kubeloop";
import { installCrd, runOperator, startControlPlane, waitFor, type ControlPlane, type OperatorUnderTest } from "kubeloop/testing";
import { Hello, op } from "./operator.js";

let cp: ControlPlane;
let client: Client;
let running: OperatorUnderTest;
// A namespace of this run's own: the test runs again on a cluster that keeps its objects
// (KUBELOOP_KUBECONFIG naming one that \`kubeloop control-plane start\` runs).
const ns = \`test-\${Date.now().toString(36)}\`;
before(async () => {
  cp = await startControlPlane();
  // No client-side rate limit in tests (the operator's default is 5 requests/s, as client-go's).
  client = await Client.load({ path: cp.kubeconfigPath, rateLimit: false });
  await installCrd(client, Hello.crd);
  running = await runOperator(op, { client });
});
after(async () => {
  await running?.stop();
  await client?.resource(Namespace).delete(ns).catch(() => undefined);
  await client?.close();
  await cp?.stop();
});

it("replies to a Hello", async () => {
  await client.resource(Namespace).create({ metadata: { name: ns } });
  await client.resource(Hello).namespace(ns).create({ metadata: { name: "h" }, spec: { greeting: "hi" } });
  const status = await waitFor("status.reply", async () => (await client.resource(Hello).namespace(ns).get("h")).status as { reply?: { reply: string } } | undefined);
  assert.deepEqual(status?.reply, { reply: "hi, back" });
});
`,
    "README.md": `# ${name}

An operator made with kubeloop ${own.version} (TypeScript Kubernetes operators: \`npx kubeloop --help\`).

\`\`\`sh
npm install
npm test          # type-check, then the test against a local control plane
npm run dev       # local control plane + CRDs + the operator, restarted on changes
npm start         # against your current kubeconfig (kubeloop run operator.ts --help for flags)
npm run build     # dist/operator.js, what the image runs
npm run generate  # manifests/: CRDs, least-privilege RBAC, Deployment, Service, kustomization, Helm chart
\`\`\`

Deploying: build the image from \`Dockerfile\`, then \`kubectl apply -k manifests\` (after
\`npm run generate\` with \`--image\`), or install \`manifests/chart\` with Helm. See
node_modules/kubeloop/docs/deploy.md.
`,
    ".gitignore": "node_modules/\ndist/\n",
  };
}

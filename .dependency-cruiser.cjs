// The layers of shared/DESIGN.md: each layer imports only from the layers above it (and from
// siblings of its own layer, e.g. cli uses the testing harness for `kubeloop dev`; cycles are
// forbidden below, so a sibling pair can only depend one way).
//   1 core  2 client  3 runtime  4 controller  5 handlers webhook manifests observe  6 operator
//   7 cli testing
const layers = [
  ["core"],
  ["client"],
  ["runtime"],
  ["controller"],
  ["handlers", "webhook", "manifests", "observe"],
  ["operator"],
  ["cli", "testing"],
];
const levelOf = Object.fromEntries(layers.flatMap((names, level) => names.map((n) => [n, level])));
const forbidden = [];
for (const [name, level] of Object.entries(levelOf)) {
  const notAllowed = Object.entries(levelOf)
    .filter(([other, otherLevel]) => other !== name && otherLevel > level)
    .map(([other]) => other);
  if (notAllowed.length === 0) continue;
  forbidden.push({
    name: `layer-${name}`,
    comment: `src/${name} (layer ${level + 1}) may import only from layers above it`,
    severity: "error",
    // Unit tests beside the code may use the testing toolkit (fakes, scripted events); the code may not.
    from: { path: `^src/${name}/`, pathNot: "\\.test\\.ts$" },
    to: { path: `^src/(${notAllowed.join("|")})/` },
  });
}
// Inner layers of the larger folders: a file may import only from its own inner layer's
// siblings below it in this order (the helpers first, the composition last).
const innerLayers = {
  controller: [
    ["events", "finalizer", "ownership", "conditions", "read-your-writes", "predicates", "leader-election", "shard-members"],
    ["cache", "sharding"],
    ["reconcile"],
    ["spec", "context"],
    ["controller"],
    ["builder"],
    ["manager"],
  ],
  handlers: [
    ["errors", "filters", "diff", "scope", "adopt", "indexes"],
    ["registry", "progress"],
    ["storage", "context", "causes"],
    ["tasks", "activities"],
    ["processing"],
    ["wiring"],
  ],
};
// Layer 5's folders are independent of each other but for these three uses (named in
// docs/architecture.md): anything else from a sibling of layer 5 is refused.
const layer5 = ["handlers", "webhook", "manifests", "observe"];
const layer5Uses = {
  webhook: "handlers/registry", // filters and indexes for admission handlers
  manifests: "webhook/registration", // the webhook configurations they write
  observe: "webhook/server", // the webhook server's metrics hooks
};
for (const [folder, inner] of Object.entries(innerLayers)) {
  inner.forEach((names, level) => {
    const above = inner.slice(level + 1).flat();
    if (above.length === 0) return;
    forbidden.push({
      name: `inner-${folder}-${names[0]}`,
      comment: `src/${folder}: ${names.join(", ")} may not import ${above.join(", ")} (inner layers)`,
      severity: "error",
      from: { path: `^src/${folder}/(${names.join("|")})\\.ts$` },
      to: { path: `^src/${folder}/(${above.join("|")})\\.ts$` },
    });
  });
}

for (const name of layer5) {
  const allowed = layer5Uses[name];
  forbidden.push({
    name: `layer5-${name}-peers`,
    comment: `src/${name} may use the other folders of layer 5 only as docs/architecture.md says${allowed ? ` (${allowed}.ts)` : " (not at all)"}`,
    severity: "error",
    from: { path: `^src/${name}/`, pathNot: "\\.test\\.ts$" },
    to: { path: `^src/(${layer5.filter((n) => n !== name).join("|")})/`, ...(allowed ? { pathNot: `^src/${allowed}\\.ts$` } : {}) },
  });
}

forbidden.push(
  {
    name: "testing-not-cli",
    comment: "the testing toolkit is a library; it never depends on the command line",
    severity: "error",
    from: { path: "^src/testing/" },
    to: { path: "^src/cli/" },
  },
  {
    name: "no-io-in-core",
    comment: "core/ is pure (shared/DESIGN.md): no files, sockets or processes; what needs them lives in the layer that does I/O",
    severity: "error",
    from: { path: "^src/core/", pathNot: "\\.test\\.ts$" },
    to: { dependencyTypes: ["core"], path: "^(node:)?(fs|fs/promises|net|http|https|http2|tls|dgram|child_process)$" },
  },
  {
    name: "no-facade-inside",
    comment: "the facades (src/entries/index.ts, src/entries/runtime.ts, src/entries/testing.ts) are for users; code inside imports modules directly",
    severity: "error",
    from: { path: "^src/(?!entries/).+/" },
    to: { path: "^src/entries/" },
  },
  {
    name: "no-circular",
    severity: "error",
    from: {},
    to: { circular: true },
  },
);
module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};

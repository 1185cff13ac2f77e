// Unmanaged webhooks (issue 16): `kubeloop generate all --webhooks cert-manager` for
// examples/16-admission, applied to the real API server, and the operator run the way its
// generated Deployment says (its args, its ServiceAccount, in-cluster config, the certificate
// Secret's files as the kubelet would mount them). The API server calls the webhooks through
// the generated Service: there is no Service network here, so the test writes an EndpointSlice
// with this machine's address (the control plane runs with --enable-aggregator-routing), as the
// EndpointSlice controller would for the Pod. The test plays cert-manager: it checks the Issuer and
// Certificate against cert-manager's own CRDs (v1.21.2, test/fixtures/crds), issues the
// certificate into the Secret the Certificate names, and injects the CA where the
// `cert-manager.io/inject-ca-from` annotations say, as cert-manager's CA injector does.
// Serial: the configurations are cluster-wide and named after the operator, as in 16's own test.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import * as YAML from "yaml";
import { Client } from "../src/entries/index.js";
import { createCertificateAuthority, type CertificateAuthority } from "../src/core/pki.js";
import { call, createNamespace, eventually, freePort, identityFromKubeconfig, releaseSharedCluster, serviceAccountToken, sharedCluster, type Identity } from "./helpers.js";
import { spawnKubeloop, type CliRun } from "./support.js";

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string>; managedFields?: { manager?: string }[] }; spec?: Record<string, unknown>; webhooks?: { clientConfig: { caBundle?: string; service?: { name: string; namespace: string; port: number } } }[] };

const PATHS: Record<string, { base: string; plural: string; namespaced: boolean }> = {
  CustomResourceDefinition: { base: "/apis/apiextensions.k8s.io/v1", plural: "customresourcedefinitions", namespaced: false },
  ServiceAccount: { base: "/api/v1", plural: "serviceaccounts", namespaced: true },
  Service: { base: "/api/v1", plural: "services", namespaced: true },
  Secret: { base: "/api/v1", plural: "secrets", namespaced: true },
  Deployment: { base: "/apis/apps/v1", plural: "deployments", namespaced: true },
  PodDisruptionBudget: { base: "/apis/policy/v1", plural: "poddisruptionbudgets", namespaced: true },
  EndpointSlice: { base: "/apis/discovery.k8s.io/v1", plural: "endpointslices", namespaced: true },
  Role: { base: "/apis/rbac.authorization.k8s.io/v1", plural: "roles", namespaced: true },
  RoleBinding: { base: "/apis/rbac.authorization.k8s.io/v1", plural: "rolebindings", namespaced: true },
  ClusterRole: { base: "/apis/rbac.authorization.k8s.io/v1", plural: "clusterroles", namespaced: false },
  ClusterRoleBinding: { base: "/apis/rbac.authorization.k8s.io/v1", plural: "clusterrolebindings", namespaced: false },
  ValidatingWebhookConfiguration: { base: "/apis/admissionregistration.k8s.io/v1", plural: "validatingwebhookconfigurations", namespaced: false },
  MutatingWebhookConfiguration: { base: "/apis/admissionregistration.k8s.io/v1", plural: "mutatingwebhookconfigurations", namespaced: false },
  Issuer: { base: "/apis/cert-manager.io/v1", plural: "issuers", namespaced: true },
  Certificate: { base: "/apis/cert-manager.io/v1", plural: "certificates", namespaced: true },
};

const pathOf = (kind: string, name: string, namespace?: string) => {
  const p = PATHS[kind];
  assert.ok(p, `a kind this test knows: ${kind}`);
  return `${p.base}${p.namespaced ? `/namespaces/${namespace}` : ""}/${p.plural}/${name}`;
};

let client: Client;
let id: Identity;
let dir: string;
let operator: CliRun | undefined;
const cleanup: (() => Promise<unknown>)[] = [];
before(async () => {
  const kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  id = identityFromKubeconfig(kubeconfig);
  dir = mkdtempSync(join(tmpdir(), "kubeloop-unmanaged-"));
});
after(async () => {
  operator?.kill("SIGTERM");
  await operator?.exited;
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await client?.close();
  rmSync(dir, { recursive: true, force: true });
  await releaseSharedCluster();
});

/**
 * Creates the object as the admin, or replaces it whole (as `kubectl replace`: fields another
 * writer left, e.g. a managed-mode run's `url`, do not survive); fails naming the object and the
 * server's message.
 */
async function apply(o: Manifest): Promise<Manifest> {
  const path = pathOf(o.kind, o.metadata.name, o.metadata.namespace);
  const current = await call(id, "GET", path);
  const r = current.status === 200
    ? await call(id, "PUT", path, { ...o, metadata: { ...o.metadata, resourceVersion: current.body.metadata.resourceVersion } })
    : await call(id, "POST", path.slice(0, path.lastIndexOf("/")), o);
  assert.ok(r.status === 200 || r.status === 201, `${o.kind} ${o.metadata.name}: ${r.status} ${r.body.message ?? ""}`);
  return r.body as Manifest;
}

async function get(kind: string, name: string, namespace?: string): Promise<Manifest> {
  const r = await call(id, "GET", pathOf(kind, name, namespace));
  assert.equal(r.status, 200, `${kind} ${namespace ?? ""}/${name}: ${r.status} ${r.body.message ?? ""}`);
  return r.body as Manifest;
}

const parseAll = (text: string) => YAML.parseAllDocuments(text).map((d) => d.toJS() as Manifest).filter(Boolean);

/** cert-manager's part: the Certificate's Secret (tls.crt, tls.key, ca.crt), issued by `ca` for its DNS names. */
async function issue(ca: CertificateAuthority, certificate: Manifest): Promise<Record<string, string>> {
  const spec = certificate.spec as { secretName: string; dnsNames: string[] };
  const leaf = await ca.sign({ commonName: spec.dnsNames[0] ?? "", dnsNames: spec.dnsNames, usage: "server" });
  const files = { "tls.crt": leaf.certificate, "tls.key": leaf.key, "ca.crt": ca.certificate };
  const data = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
  await apply({ apiVersion: "v1", kind: "Secret", metadata: { name: spec.secretName, namespace: certificate.metadata.namespace ?? "" }, ...({ type: "kubernetes.io/tls", data } as object) });
  return files;
}

/** cert-manager's CA injector: the annotation names a Certificate; its Secret's ca.crt becomes every caBundle of `o`. */
async function injectCa(o: Manifest): Promise<void> {
  const from = o.metadata.annotations?.["cert-manager.io/inject-ca-from"];
  assert.ok(from, `${o.kind} ${o.metadata.name} asks for CA injection`);
  const [namespace, name] = from.split("/") as [string, string];
  const certificate = await get("Certificate", name, namespace);
  const secret = (await get("Secret", (certificate.spec as { secretName: string }).secretName, namespace)) as unknown as { data: Record<string, string> };
  const caBundle = secret.data["ca.crt"];
  assert.ok(caBundle, "the Secret has ca.crt");
  if (o.kind === "CustomResourceDefinition") {
    const r = await call(id, "PATCH", pathOf(o.kind, o.metadata.name), { spec: { conversion: { webhook: { clientConfig: { caBundle } } } } }, { "content-type": "application/merge-patch+json" });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  } else {
    const patch = (o.webhooks ?? []).map((_, i) => ({ op: "add", path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle }));
    const r = await call(id, "PATCH", pathOf(o.kind, o.metadata.name), patch, { "content-type": "application/json-patch+json" });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
}

/** This machine's first non-loopback IPv4 address (an EndpointSlice refuses loopback). */
function hostAddress(): string | undefined {
  return Object.values(networkInterfaces()).flat().find((a) => a && a.family === "IPv4" && !a.internal)?.address;
}

/** The serial number of the certificate served at port. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.on("error", reject);
  });
}

describe("unmanaged webhooks with cert-manager", () => {
  it("16-admission: generated with --webhooks cert-manager, run as its Deployment says, served through its Service; no registration rights", { timeout: 180_000 }, async (t) => {
    const address = hostAddress();
    if (!address) return t.skip("this machine has no non-loopback IPv4 address for an EndpointSlice");
    const ns = await createNamespace(client, "unmanaged");
    const out = join(dir, "manifests");
    const gen = spawnKubeloop(["generate", "all", "examples/16-admission/operator.ts", "-o", out, "--namespace", ns, "--webhooks", "cert-manager"]);
    assert.equal(await gen.exited, 0, gen.out());
    const read = (f: string) => parseAll(readFileSync(join(out, f), "utf8"));
    const [rbac, crds, deploy, webhooks] = [read("rbac.yaml"), read("crds.yaml"), read("deploy.yaml"), read("webhooks.yaml")];
    assert.deepEqual((YAML.parse(readFileSync(join(out, "kustomization.yaml"), "utf8")) as { resources: string[] }).resources, ["rbac.yaml", "crds.yaml", "deploy.yaml", "webhooks.yaml"]);
    assert.deepEqual(webhooks.map((o) => o.kind), ["Issuer", "Certificate", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"]);
    assert.ok(!JSON.stringify(rbac).includes("admissionregistration") && !JSON.stringify(rbac).includes("customresourcedefinitions"), "the RBAC has no registration rules");

    // cert-manager's CRDs, then everything generated (a Deployment cannot run here: it is only applied).
    for (const crd of parseAll(gunzipSync(readFileSync(join("test", "fixtures", "crds", "cert-manager-v1.21.2.yaml.gz"))).toString())) {
      await apply(crd);
      cleanup.push(() => call(id, "DELETE", pathOf("CustomResourceDefinition", crd.metadata.name)));
      await eventually(`${crd.metadata.name} established`, async () => ((await get("CustomResourceDefinition", crd.metadata.name)) as unknown as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions?.some((c) => c.type === "Established" && c.status === "True"));
    }
    for (const o of [...rbac, ...crds, ...deploy, ...webhooks]) {
      await apply(o);
      if (!PATHS[o.kind]?.namespaced) cleanup.push(() => call(id, "DELETE", pathOf(o.kind, o.metadata.name)));
    }

    // cert-manager: issue the Certificate's Secret, inject the CA.
    const ca = await createCertificateAuthority("cert-manager-test-ca");
    const certificate = webhooks.find((o) => o.kind === "Certificate") as Manifest;
    const files = await issue(ca, certificate);
    for (const o of [...crds.filter((c) => c.metadata.annotations?.["cert-manager.io/inject-ca-from"]), ...webhooks.filter((o) => o.kind.endsWith("WebhookConfiguration"))]) await injectCa(o);

    // The operator as its Deployment says: its args (ports of this machine), the Secret's files where
    // the Deployment mounts them, its ServiceAccount in-cluster.
    const container = (deploy.find((o) => o.kind === "Deployment")?.spec as { template: { spec: { containers: { args: string[] }[]; volumes: { name: string; secret?: { secretName: string } }[] } } }).template.spec;
    assert.equal(container.volumes.find((v) => v.secret)?.secret?.secretName, (certificate.spec as { secretName: string }).secretName, "the Deployment mounts the Certificate's Secret");
    const port = await freePort("0.0.0.0");
    const certDir = join(dir, "webhook-certificate");
    mkdirSync(certDir);
    for (const [f, text] of Object.entries(files)) writeFileSync(join(certDir, f), text);
    const args = (container.containers[0]?.args ?? []).map((a, i, all) => {
      if (i === 1) return "examples/16-admission/operator.ts"; // the module inside the image
      if (all[i - 1] === "--webhook-bind") return `0.0.0.0:${port}`;
      if (all[i - 1] === "--webhook-cert-dir") return certDir;
      if (all[i - 1] === "--metrics-bind" || all[i - 1] === "--health-bind") return "0";
      return a;
    });
    assert.ok(args.includes("--webhook-unmanaged"), `args: ${args.join(" ")}`);
    const saDir = join(dir, "serviceaccount");
    mkdirSync(saDir);
    writeFileSync(join(saDir, "token"), await serviceAccountToken(id, ns, "budgets"));
    writeFileSync(join(saDir, "ca.crt"), id.ca);
    writeFileSync(join(saDir, "namespace"), ns);
    const server = new URL(id.server);
    operator = spawnKubeloop(args, { ...process.env, KUBECONFIG: "", HOME: dir, KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port, KUBELOOP_SERVICE_ACCOUNT_DIR: saDir });

    // The EndpointSlice the controller would write for the operator's Pod.
    const service = deploy.find((o) => o.kind === "Service") as Manifest;
    await apply({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: `${service.metadata.name}-test`, namespace: ns, ...({ labels: { "kubernetes.io/service-name": service.metadata.name, "endpointslice.kubernetes.io/managed-by": "kubeloop-test" } } as object) },
      ...({ addressType: "IPv4", endpoints: [{ addresses: [address], conditions: { ready: true } }], ports: [{ name: "webhooks", port, protocol: "TCP" }] } as object),
    });

    // The scenario of 16's own test, through the Service.
    const at = (v: string, name = "") => `/apis/examples.kubeloop.dev/${v}/namespaces/${ns}/budgets${name ? `/${name}` : ""}`;
    const budget = (name: string, spec: object, v = "v2") => ({ apiVersion: `examples.kubeloop.dev/${v}`, kind: "Budget", metadata: { name }, spec });
    const negative = await eventually("the operator serving", async () => {
      const r = await call(id, "POST", at("v2"), budget("broke", { amount: -5, currency: "eur" }));
      return r.status === 422 ? r : undefined;
    }, { timeoutMs: 60_000 });
    assert.match(negative.body.message, /amount -5 must not be negative/);
    const big = await call(id, "POST", at("v2"), budget("big", { amount: 2_000_000, currency: "usd" }));
    assert.equal(big.status, 201, JSON.stringify(big.body));
    assert.match(String(big.headers.warning ?? ""), /needs approval/);
    assert.deepEqual(big.body.spec, { amount: 2_000_000, currency: "USD" }, "mutated");
    const old = await call(id, "POST", at("v1"), budget("old", { cents: 12_345 }, "v1"));
    assert.equal(old.status, 201, JSON.stringify(old.body));
    assert.deepEqual((await call(id, "GET", at("v2", "old"))).body.spec, { amount: 123, currency: "EUR" }, "written as v1, read as v2");
    assert.deepEqual((await call(id, "GET", at("v1", "big"))).body.spec, { cents: 200_000_000 }, "written as v2, read as v1");

    // cert-manager renews the serving certificate (same CA): the kubelet updates the mounted files,
    // the operator serves the new one, the API server's calls go on.
    const before = await servedSerial(port);
    const renewed = await issue(ca, certificate);
    for (const [f, text] of Object.entries(renewed)) writeFileSync(join(certDir, f), text);
    await eventually("the renewed certificate served", async () => (await servedSerial(port)) !== before, { timeoutMs: 30_000 });
    const after = await call(id, "POST", at("v2"), budget("after-renewal", { amount: -1, currency: "eur" }));
    assert.equal(after.status, 422, JSON.stringify(after.body));

    // The operator registered nothing itself (the manifests did), and was refused nothing.
    for (const kind of ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "CustomResourceDefinition"]) {
      const name = kind === "CustomResourceDefinition" ? (crds[0]?.metadata.name ?? "") : "budgets";
      const managers = (await get(kind, name)).metadata.managedFields?.map((f) => f.manager) ?? [];
      assert.ok(!managers.some((m) => m?.includes("budgets")), `${kind} ${name} written only by the manifests: ${managers.join(", ")}`);
    }
    const refusals = operator.out().split("\n").filter((l) => /ForbiddenError|is forbidden/.test(l));
    assert.deepEqual(refusals.map((l) => l.slice(0, 300)), [], "refused requests");
    assert.ok(!/registered/.test(operator.out()), "the operator did not register webhooks");
  });
});

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as pki from "./pki.js";

describe("importing kubeloop", () => {
  it("changes no global: reflect-metadata (for @peculiar/x509's tsyringe) is loaded only when a certificate is made", () => {
    const entries = ["index", "runtime", "testing"].map((e) => fileURLToPath(new URL(`../entries/${e}.ts`, import.meta.url)));
    const script = `for (const e of ${JSON.stringify(entries)}) await import(e); console.log(typeof Reflect.getMetadata);`;
    assert.equal(execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" }).trim(), "undefined");
  });
});

describe("pki", () => {
  it("issues a serving certificate for loopback names, signed by the CA", async () => {
    const ca = await pki.createCertificateAuthority("test-ca");
    const serving = await ca.sign({ commonName: "api", usage: "server", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
    const cert = new X509Certificate(serving.certificate);
    const caCert = new X509Certificate(ca.certificate);
    assert.ok(cert.verify(caCert.publicKey), "signed by the CA");
    assert.ok(cert.checkIssued(caCert));
    assert.equal(cert.checkHost("localhost"), "localhost");
    assert.equal(cert.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(cert.checkHost("example.com"), undefined);
    assert.equal(caCert.ca, true);
    assert.equal(cert.ca, false);
    // The key matches the certificate.
    assert.ok(createPublicKey(createPrivateKey(serving.key)).equals(cert.publicKey));
  });

  it("puts the groups of a client identity in the subject's O fields", async () => {
    const ca = await pki.createCertificateAuthority("test-ca");
    const client = await ca.sign({ commonName: "alice", organizations: ["system:masters", "devs"], usage: "client" });
    const subject = new X509Certificate(client.certificate).subject;
    assert.match(subject, /CN=alice/);
    assert.match(subject, /O=system:masters/);
    assert.match(subject, /O=devs/);
  });

  it("reloads a CA from PEM and keeps signing with the same key", async () => {
    const ca = await pki.createCertificateAuthority("test-ca");
    const again = await pki.loadCertificateAuthority({ certificate: ca.certificate, key: ca.key });
    const leaf = await again.sign({ commonName: "bob", usage: "client" });
    assert.ok(new X509Certificate(leaf.certificate).verify(new X509Certificate(ca.certificate).publicKey));
  });

  it("tells whether a certificate stays valid long enough", async () => {
    const ca = await pki.createCertificateAuthority("test-ca");
    const short = await ca.sign({ commonName: "c", usage: "client", validityDays: 2 });
    assert.equal(pki.validFor(short.certificate, 1), true);
    assert.equal(pki.validFor(short.certificate, 3), false);
  });

  it("makes a service-account signing key pair", async () => {
    const sa = await pki.createSigningKey();
    assert.match(sa.certificate, /BEGIN PUBLIC KEY/);
    assert.ok(createPublicKey(createPrivateKey(sa.key)).equals(createPublicKey(sa.certificate)));
  });
});

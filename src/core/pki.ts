// Certificates for the local control plane and the webhook server: a CA, serving certificates, the
// service-account signing key and client certificates (the admin in system:masters, and any
// other identity a test asks for). ECDSA P-256 throughout: key generation takes milliseconds,
// where RSA-2048 in pure JS would dominate start-up.
//
// Built on @peculiar/x509 over Node's WebCrypto, so nothing depends on an openssl binary. It is
// loaded on first use, not on import: its dependency injection (tsyringe) needs a global
// `Reflect.getMetadata` (reflect-metadata), and importing kubeloop must change no global. Reading a
// certificate's dates needs none of it (Node's own X509Certificate).
import { X509Certificate, webcrypto } from "node:crypto";
import type * as X509 from "@peculiar/x509";

// The project compiles without the DOM lib: take WebCrypto's types from node:crypto.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

let library: Promise<typeof X509> | undefined;
/** @peculiar/x509 over Node's WebCrypto, loaded once (with reflect-metadata before it). */
function x509Library(): Promise<typeof X509> {
  library ??= (async () => {
    await import("reflect-metadata");
    const loaded = await import("@peculiar/x509");
    // Node loads its ES module; a bundle may hand over its CommonJS exports as `default`.
    const x509 = (loaded.cryptoProvider ? loaded : (loaded as unknown as { default: typeof X509 }).default) as typeof X509;
    // Node's webcrypto is the standard Crypto; its declared type differs from the DOM lib's that @peculiar/x509 names.
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return library;
}

const keyAlgorithm = { name: "ECDSA", namedCurve: "P-256" } as const;
const signingAlgorithm = { name: "ECDSA", hash: "SHA-256" } as const;
const DAY_MS = 24 * 60 * 60 * 1000;

/** A certificate and its private key, both PEM. */
export interface KeyPairPem {
  /** PEM "CERTIFICATE" (for a bare key pair, the "PUBLIC KEY"). */
  certificate: string;
  /** PEM "PRIVATE KEY" (PKCS#8). */
  key: string;
}

/** A certificate authority able to sign further certificates. */
export interface CertificateAuthority extends KeyPairPem {
  sign(request: LeafRequest): Promise<KeyPairPem>;
}

/** What a leaf certificate is for. */
export interface LeafRequest {
  commonName: string;
  /** Subject organizations; Kubernetes reads them as the user's groups. */
  organizations?: readonly string[];
  /** DNS names and IP addresses for a serving certificate. */
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  usage: "server" | "client";
  validityDays?: number;
}

/** Creates a new self-signed CA (valid ten years). */
export async function createCertificateAuthority(commonName: string): Promise<CertificateAuthority> {
  const x509 = await x509Library();
  const keys = await webcrypto.subtle.generateKey(keyAlgorithm, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ CN: [commonName] }],
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3650 * DAY_MS),
    signingAlgorithm,
    keys: keys as CryptoKeyPair,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as CryptoKey),
    ],
  });
  return authority(x509, cert.toString("pem"), await exportPrivateKey(x509, keys.privateKey as CryptoKey), cert, keys.privateKey as CryptoKey);
}

/** Loads a CA written earlier by {@link createCertificateAuthority} (a persistent data dir). */
export async function loadCertificateAuthority(pem: KeyPairPem): Promise<CertificateAuthority> {
  const x509 = await x509Library();
  const cert = new x509.X509Certificate(pem.certificate);
  const der = x509.PemConverter.decodeFirst(pem.key);
  const key = await webcrypto.subtle.importKey("pkcs8", der, keyAlgorithm, true, ["sign"]);
  return authority(x509, pem.certificate, pem.key, cert, key as CryptoKey);
}

/** A bare ECDSA key pair: the service-account token signing key. */
export async function createSigningKey(): Promise<KeyPairPem> {
  const x509 = await x509Library();
  const keys = await webcrypto.subtle.generateKey(keyAlgorithm, true, ["sign", "verify"]);
  const spki = await webcrypto.subtle.exportKey("spki", keys.publicKey as CryptoKey);
  return {
    certificate: x509.PemConverter.encode(spki, "PUBLIC KEY"),
    key: await exportPrivateKey(x509, keys.privateKey as CryptoKey),
  };
}

/** Whether a PEM certificate is still valid for at least `marginDays`. */
export function validFor(certificatePem: string, marginDays: number): boolean {
  const cert = new X509Certificate(certificatePem);
  return Date.parse(cert.validTo) - Date.now() > marginDays * DAY_MS;
}

function authority(x509: typeof X509, certificate: string, key: string, cert: X509.X509Certificate, signingKey: CryptoKey): CertificateAuthority {
  return {
    certificate,
    key,
    async sign(request) {
      const keys = await webcrypto.subtle.generateKey(keyAlgorithm, true, ["sign", "verify"]);
      const subject: X509.JsonName = [{ CN: [request.commonName] }];
      for (const org of request.organizations ?? []) subject.push({ O: [org] });
      const extensions: X509.Extension[] = [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([
          request.usage === "server" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
        ]),
        await x509.AuthorityKeyIdentifierExtension.create(cert),
      ];
      const names = [
        ...(request.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
        ...(request.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
      ];
      if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serialNumber(),
        subject,
        issuer: cert.subject,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + (request.validityDays ?? 825) * DAY_MS),
        signingAlgorithm,
        publicKey: keys.publicKey as CryptoKey,
        signingKey,
        extensions,
      });
      return { certificate: leaf.toString("pem"), key: await exportPrivateKey(x509, keys.privateKey as CryptoKey) };
    },
  };
}

async function exportPrivateKey(x509: typeof X509, key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/** A positive 128-bit serial number, hex. */
function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString("hex");
}

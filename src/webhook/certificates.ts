// One self-signed webhook certificate for every replica of an operator. The API server calls
// whichever replica the Service picks, with the one caBundle the configuration holds, so all
// replicas must serve certificates signed by that one CA. The first replica to start makes a CA
// and a serving certificate and keeps them in a Secret `<operator>-webhook-selfsigned` in the
// operator's namespace; the others read it. A replica that needs a name the certificate lacks,
// or finds it close to expiry, issues a new one from the same CA (the caBundle does not change)
// and replaces the Secret under its resourceVersion, so two replicas never both win; every
// replica re-reads the Secret periodically and serves what it holds (as kubebuilder's and OPA's
// cert-controller do, without a separate rotator).
import type { Client } from "../client/client.js";
import { Secret } from "../core/builtins.js";
import { AlreadyExistsError, ConflictError, NotFoundError } from "../core/errors.js";
import type * as core from "../core/kube/core/v1.js";

/** The annotation listing the names the serving certificate carries (sorted JSON). */
export const NAMES_ANNOTATION = "kubeloop.dev/webhook-names";
/** Serving certificates are issued again when fewer days than this are left. */
const RENEW_DAYS = 30;

/** A serving certificate and the CA bundle to register. */
export interface SharedCertificate {
  certificate: string;
  key: string;
  /** The CA's certificate (PEM): the caBundle. */
  caBundle: string;
  /** The Secret's resourceVersion this was read from. */
  version: string;
}

/** The names a serving certificate must carry. */
export interface CertificateNames {
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
}

/**
 * Reads the operator's webhook certificate from its Secret, creating or renewing it when needed
 * (see the file's comment). Fails with the API error when the Secret cannot be read or written
 * (RBAC: get, create and update on that Secret), after a few conflicts in a row.
 */
export async function sharedCertificate(client: Client, ref: { namespace: string; name: string }, names: CertificateNames): Promise<SharedCertificate> {
  const secrets = client.resource(Secret).namespace(ref.namespace);
  const { createCertificateAuthority, loadCertificateAuthority, validFor } = await import("../core/pki.js");
  for (let attempt = 1; ; attempt++) {
    let current: core.Secret | undefined;
    try {
      current = await secrets.get(ref.name);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
    const held = current ? parse(current) : undefined;
    const wanted = union(held?.names, names);
    const caUsable = held?.ca && held.caKey && validFor(held.ca, RENEW_DAYS);
    const leafUsable = caUsable && held.certificate && held.key && validFor(held.certificate, RENEW_DAYS) && sameNames(held.names, wanted);
    if (current && held && leafUsable) return { certificate: held.certificate as string, key: held.key as string, caBundle: held.ca as string, version: current.metadata?.resourceVersion ?? "" };
    // Issue: from the CA the Secret holds while it lasts (the caBundle stays), else a new CA.
    const ca = caUsable ? await loadCertificateAuthority({ certificate: held.ca as string, key: held.caKey as string }) : await createCertificateAuthority("kubeloop-webhook-ca");
    const leaf = await ca.sign({ commonName: "kubeloop-webhook", usage: "server", dnsNames: wanted.dnsNames, ipAddresses: wanted.ipAddresses });
    const body: core.Secret = {
      metadata: { name: ref.name, namespace: ref.namespace, annotations: { [NAMES_ANNOTATION]: JSON.stringify(wanted) }, labels: { "app.kubernetes.io/managed-by": "kubeloop" } },
      type: "kubernetes.io/tls",
      data: { "tls.crt": b64(leaf.certificate), "tls.key": b64(leaf.key), "ca.crt": b64(ca.certificate), "ca.key": b64(ca.key) },
    };
    try {
      const written = current ? await secrets.replace({ ...body, metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion } }) : await secrets.create(body);
      return { certificate: leaf.certificate, key: leaf.key, caBundle: ca.certificate, version: written.metadata?.resourceVersion ?? "" };
    } catch (error) {
      // Another replica wrote first: read what it wrote (and add our names, if it lacks them).
      if (!(error instanceof AlreadyExistsError || error instanceof ConflictError) || attempt >= 5) throw error;
    }
  }
}

function parse(secret: core.Secret): { ca?: string; caKey?: string; certificate?: string; key?: string; names?: CertificateNames } {
  const data = secret.data ?? {};
  const text = (k: string) => (data[k] ? Buffer.from(data[k], "base64").toString("utf8") : undefined);
  let names: CertificateNames | undefined;
  try {
    names = JSON.parse(secret.metadata?.annotations?.[NAMES_ANNOTATION] ?? "null") as CertificateNames | undefined;
  } catch {
    names = undefined;
  }
  return { ca: text("ca.crt"), caKey: text("ca.key"), certificate: text("tls.crt"), key: text("tls.key"), names: names ?? undefined };
}

function union(a: CertificateNames | undefined, b: CertificateNames): { dnsNames: string[]; ipAddresses: string[] } {
  return { dnsNames: [...new Set([...(a?.dnsNames ?? []), ...b.dnsNames])].sort(), ipAddresses: [...new Set([...(a?.ipAddresses ?? []), ...b.ipAddresses])].sort() };
}

function sameNames(held: CertificateNames | undefined, wanted: CertificateNames): boolean {
  return !!held && JSON.stringify(union(held, { dnsNames: [], ipAddresses: [] })) === JSON.stringify(wanted);
}

function b64(text: string): string {
  return Buffer.from(text).toString("base64");
}

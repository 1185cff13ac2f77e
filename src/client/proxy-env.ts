// The proxy for an API server from the environment, as kubectl and client-go choose it (Go's
// net/http ProxyFromEnvironment, golang.org/x/net/http/httpproxy): HTTPS_PROXY for https://
// servers, HTTP_PROXY for http:// ones (upper case first, then lower case), none for a host
// NO_PROXY names, and never for localhost or a loopback address. A kubeconfig's proxy-url wins
// over all of this (the caller asks only when there is none). Written here because undici's
// EnvHttpProxyAgent reads process.env itself and proxies loopback addresses, which kubectl does not.
import { BlockList, isIP } from "node:net";

/** A proxy variable whose value cannot be used: its name, and why. */
export class ProxyVariableError extends Error {
  override readonly name = "ProxyVariableError";
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The proxy URL for requests to `server`, or undefined to connect directly. Throws a
 * {@link ProxyVariableError} when the variable's value is not an http:// or https:// URL.
 */
export function proxyFromEnvironment(server: string, env: NodeJS.ProcessEnv): string | undefined {
  const url = new URL(server);
  const secure = url.protocol === "https:";
  const [name, value] = pick(env, secure ? ["HTTPS_PROXY", "https_proxy"] : ["HTTP_PROXY", "http_proxy"]);
  if (!value) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = url.port || (secure ? "443" : "80");
  if (host === "localhost" || isLoopback(host)) return undefined;
  if (excluded(host, port, pick(env, ["NO_PROXY", "no_proxy"])[1] ?? "")) return undefined;
  // Go reads "proxy.example:3128" as http://proxy.example:3128.
  const proxy = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let parsed: URL;
  try {
    parsed = new URL(proxy);
  } catch {
    throw new ProxyVariableError(name, `${name}=${value} is not a URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new ProxyVariableError(name, `${name}=${value}: only http:// and https:// proxies are supported`);
  return proxy;
}

/** The first of `names` set to a non-empty value, with that value. */
function pick(env: NodeJS.ProcessEnv, names: string[]): [string, string | undefined] {
  for (const name of names) if (env[name]) return [name, env[name]];
  return [names[0] as string, undefined];
}

function isLoopback(host: string): boolean {
  const family = isIP(host);
  if (family === 4) return host.startsWith("127.");
  if (family === 6) return host === "::1";
  return false;
}

/**
 * Whether NO_PROXY keeps `host` from the proxy: `*`; an IP address or a CIDR block containing
 * it; a domain, with or without a leading dot, matching the host and its subdomains; any entry
 * with `:port` only for that port.
 */
function excluded(host: string, port: string, noProxy: string): boolean {
  for (const raw of noProxy.split(",")) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === "*") return true;
    if (entry.includes("/")) {
      if (cidrContains(entry, host)) return true;
      continue;
    }
    const [name, entryPort] = hostAndPort(entry);
    if (entryPort && entryPort !== port) continue;
    if (isIP(name) || isIP(host)) {
      if (name === host) return true;
      continue;
    }
    const domain = name.replace(/^\*?\./, "");
    if (host === domain || host.endsWith(`.${domain}`)) return true;
  }
  return false;
}

/** An entry's host and port: `[v6]:port`, `[v6]`, a bare IPv6 address (no port), `host:port` or `host`. */
function hostAndPort(entry: string): [string, string | undefined] {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return [bracketed[1] as string, bracketed[2]];
  if (isIP(entry) === 6) return [entry, undefined];
  const withPort = /^(.*):(\d+)$/.exec(entry);
  return withPort ? [withPort[1] as string, withPort[2]] : [entry, undefined];
}

function cidrContains(cidr: string, host: string): boolean {
  const [address, bits] = cidr.split("/");
  const family = isIP(address ?? "");
  if (!family || isIP(host) !== family) return false;
  const list = new BlockList();
  try {
    list.addSubnet(address as string, Number(bits), family === 4 ? "ipv4" : "ipv6");
  } catch {
    return false;
  }
  return list.check(host, family === 4 ? "ipv4" : "ipv6");
}

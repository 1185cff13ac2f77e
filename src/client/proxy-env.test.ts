// Which proxy kubectl (Go's ProxyFromEnvironment) would use for an API server, as a table.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { proxyFromEnvironment, ProxyVariableError } from "./proxy-env.js";

describe("proxyFromEnvironment", () => {
  const proxy = "http://proxy.corp:3128";
  const cases: [string, NodeJS.ProcessEnv, string | undefined][] = [
    ["https://api.example.com:6443", {}, undefined],
    ["https://api.example.com:6443", { HTTPS_PROXY: proxy }, proxy],
    ["https://api.example.com:6443", { https_proxy: proxy }, proxy],
    ["https://api.example.com:6443", { HTTP_PROXY: proxy }, undefined], // https servers read HTTPS_PROXY only
    ["http://api.example.com:8080", { HTTP_PROXY: proxy }, proxy],
    ["https://api.example.com:6443", { HTTPS_PROXY: "proxy.corp:3128" }, "http://proxy.corp:3128"],
    ["https://127.0.0.1:6443", { HTTPS_PROXY: proxy }, undefined], // loopback: never
    ["https://localhost:6443", { HTTPS_PROXY: proxy }, undefined],
    ["https://[::1]:6443", { HTTPS_PROXY: proxy }, undefined],
    ["https://api.example.com:6443", { HTTPS_PROXY: proxy, NO_PROXY: "*" }, undefined],
    ["https://api.example.com:6443", { HTTPS_PROXY: proxy, NO_PROXY: "example.com" }, undefined],
    ["https://api.example.com:6443", { HTTPS_PROXY: proxy, NO_PROXY: ".example.com" }, undefined],
    ["https://api.example.com:6443", { HTTPS_PROXY: proxy, no_proxy: "other.com, example.com" }, undefined],
    ["https://api.example.com:6443", { HTTPS_PROXY: proxy, NO_PROXY: "ample.com" }, proxy], // not a suffix at a dot
    ["https://api.example.com:6443", { HTTPS_PROXY: proxy, NO_PROXY: "api.example.com:6443" }, undefined],
    ["https://api.example.com:6443", { HTTPS_PROXY: proxy, NO_PROXY: "api.example.com:443" }, proxy],
    ["https://10.1.2.3:6443", { HTTPS_PROXY: proxy, NO_PROXY: "10.0.0.0/8" }, undefined],
    ["https://10.1.2.3:6443", { HTTPS_PROXY: proxy, NO_PROXY: "192.168.0.0/16" }, proxy],
    ["https://10.1.2.3:6443", { HTTPS_PROXY: proxy, NO_PROXY: "10.1.2.3" }, undefined],
    ["https://[fd00::1]:6443", { HTTPS_PROXY: proxy, NO_PROXY: "fd00::/8" }, undefined],
    ["https://[fd00::1]:6443", { HTTPS_PROXY: proxy, NO_PROXY: "[fd00::1]" }, undefined],
    ["https://[fd00::1]:6443", { HTTPS_PROXY: proxy, NO_PROXY: "[fd00::1]:6443" }, undefined],
    ["https://[fd00::1]:6443", { HTTPS_PROXY: proxy, NO_PROXY: "[fd00::1]:443" }, proxy],
    ["https://[fd00::1]:6443", { HTTPS_PROXY: proxy, NO_PROXY: "fd00::1" }, undefined],
  ];
  for (const [server, env, expected] of cases) {
    it(`${server} with ${JSON.stringify(env)}: ${expected ?? "direct"}`, () => assert.equal(proxyFromEnvironment(server, env), expected));
  }

  it("a proxy that is not http(s), or not a URL, is refused naming the variable", () => {
    assert.throws(() => proxyFromEnvironment("https://api.example.com", { HTTPS_PROXY: "socks5://proxy:1080" }), (e: unknown) => e instanceof ProxyVariableError && e.variable === "HTTPS_PROXY" && /only http:\/\/ and https:\/\//.test(e.message));
    assert.throws(() => proxyFromEnvironment("https://api.example.com", { https_proxy: "http://[bad" }), (e: unknown) => e instanceof ProxyVariableError && e.variable === "https_proxy");
  });
});

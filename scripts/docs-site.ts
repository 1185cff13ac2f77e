// `npm run docs:site` (in `npm test`, after `npm run docs:api`): builds the docs site and checks it
// in a real browser.
//
// 1. VitePress builds docs/ into dist-docs/site (docs/.vitepress/config.mts); a link to a page
//    that does not exist fails the build. TypeDoc's API reference (dist-docs/api) goes under /api/.
// 2. The built site is served on loopback and opened in headless Chromium (Debian's package,
//    driven by playwright-core; installed with apt-get when missing and run as root, as on CI):
//    every page renders with its title and without script errors or failed requests; the
//    sidebar and the home page's buttons navigate; the local search finds a page and opens it;
//    the example a page embeds is the example file the test suite type-checks and runs; the API
//    reference opens from the navigation bar and links to a class's page. Screenshots of the
//    pages go to dist-docs/screenshots/.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize } from "node:path";
import { chromium, type Page } from "playwright-core";
import { build } from "vitepress";

const root = join(import.meta.dirname, "..");
const site = join(root, "dist-docs", "site");
const api = join(root, "dist-docs", "api");
const shots = join(root, "dist-docs", "screenshots");

await build(join(root, "docs"));
if (!existsSync(join(api, "index.html"))) throw new Error("docs-site: dist-docs/api/index.html is missing: run `npm run docs:api` first");
cpSync(api, join(site, "api"), { recursive: true });

const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json", ".png": "image/png", ".woff2": "font/woff2" };

/** Serves `dir` as a static host with clean URLs would (`/x` → x.html). */
function serve(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
    const candidates = [join(dir, path), join(dir, `${path}.html`), join(dir, path, "index.html")];
    const file = candidates.find((f) => f.startsWith(dir) && existsSync(f) && statSync(f).isFile());
    if (!file) {
      res.writeHead(404, { "content-type": "text/html" }).end(readFileSync(join(dir, "404.html")));
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** Debian's Chromium: installed with apt-get when missing (as root, as on CI), else an error saying how. */
function chromiumPath(): string {
  const path = process.env.KUBELOOP_CHROMIUM ?? "/usr/bin/chromium";
  if (existsSync(path)) return path;
  if (process.getuid?.() !== 0) throw new Error(`docs-site: Chromium is needed at ${path} to check the docs site: \`sudo apt-get install chromium\` (or set KUBELOOP_CHROMIUM to a Chromium binary)`);
  console.log("docs-site: installing Chromium from Debian's packages (apt-get install chromium)");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update", "-q"], { stdio: ["ignore", "ignore", "inherit"], env });
  execFileSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", "chromium"], { stdio: ["ignore", "ignore", "inherit"], env });
  return path;
}

const problems: string[] = [];
function check(ok: boolean, what: string): void {
  if (!ok) problems.push(what);
}

/**
 * Whether the page shows `text` in `selector` within 10 s. After a click in the single-page app
 * the URL changes before the new page renders, so reading the heading at once could find the
 * old one (fresh CI once failed so on the sidebar check).
 */
function shows(page: Page, selector: string, text: RegExp): Promise<boolean> {
  return page.locator(selector, { hasText: text }).first().waitFor({ timeout: 10_000 }).then(() => true, () => false);
}

/** Opens `url` and fails on a script error or a failed request while it loads. */
async function open(page: Page, url: string): Promise<void> {
  const errors: string[] = [];
  const onError = (error: Error) => errors.push(error.message);
  const onResponse = (response: { status(): number; url(): string }) => {
    if (response.status() >= 400) errors.push(`${response.status()} ${response.url()}`);
  };
  page.on("pageerror", onError);
  page.on("response", onResponse);
  await page.goto(url, { waitUntil: "networkidle" });
  page.off("pageerror", onError);
  page.off("response", onResponse);
  check(errors.length === 0, `${url}: ${errors.join("; ")}`);
}

const server = await serve(site);
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
// The flags keep Chromium off the network this machine does not have (its background services).
const browser = await chromium.launch({
  executablePath: chromiumPath(),
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  mkdirSync(shots, { recursive: true });
  // Every page: rendered, titled, no errors.
  const pages = readdirSync(site).filter((f) => f.endsWith(".html") && f !== "404.html").map((f) => f.replace(/\.html$/, ""));
  for (const name of pages) {
    await open(page, `${base}/${name === "index" ? "" : name}`);
    const heading = (await page.locator(name === "index" ? ".VPHero .name" : ".vp-doc h1").first().textContent({ timeout: 5_000 }).catch(() => null))?.trim();
    check(Boolean(heading), `${name}: no heading rendered`);
    await page.screenshot({ path: join(shots, `${name}.png`) });
  }
  // Navigation: the home page's button, then the sidebar.
  await open(page, `${base}/`);
  await page.getByRole("link", { name: "Get started" }).first().click();
  await page.waitForURL(`${base}/getting-started`);
  check(await shows(page, ".vp-doc h1", /^Getting started/), "Get started did not open the getting-started page");
  await page.locator(".VPSidebar").getByRole("link", { name: "Handlers (the kopf level)" }).click();
  await page.waitForURL(`${base}/handlers`);
  check(await shows(page, ".vp-doc h1", /^Handlers/), "the sidebar did not open the handlers page");
  // Search: a word of one guide finds it, Enter opens it.
  await page.locator(".DocSearch-Button").click();
  await page.locator("#localsearch-input").fill("rendezvous");
  await page.locator(".results .result").first().waitFor({ timeout: 10_000 });
  const hits = await page.locator(".results .result").count();
  check(hits > 0, "search found nothing for 'rendezvous'");
  await page.keyboard.press("Enter");
  await page.waitForURL((url) => !url.pathname.endsWith("/handlers"), { timeout: 10_000 });
  const found = await page.locator(".vp-doc", { hasText: /rendezvous/i }).waitFor({ timeout: 10_000 }).then(() => true, () => false);
  check(found, `search opened ${page.url()}, which does not say 'rendezvous'`);
  // The example the getting-started page embeds is the example file, as the suite type-checks it.
  await open(page, `${base}/getting-started`);
  const example = readFileSync(join(root, "examples", "11-children", "operator.ts"), "utf8").trim();
  const blocks = await page.locator(".vp-doc div[class*='language-'] pre").allTextContents();
  check(blocks.some((b) => b.trim() === example), "getting-started does not show examples/11-children/operator.ts as it is");
  // The API reference, from the navigation bar, down to a class.
  await page.locator(".VPNavBar").getByRole("link", { name: "API reference" }).first().click();
  await page.waitForURL(`${base}/api/index.html`);
  await page.locator('.col-content a[href$="modules/kubeloop.html"]').first().click();
  await page.getByRole("link", { name: "Operator", exact: true }).first().click();
  check(await shows(page, "h1", /Operator/), `the API reference's Operator page did not open (${page.url()})`);
  await page.screenshot({ path: join(shots, "api-operator.png") });
  console.log(`docs-site: ${pages.length} pages rendered in Chromium, navigation, search, the embedded example and the API reference checked (${base}, screenshots in dist-docs/screenshots)`);
} finally {
  await browser.close();
  server.close();
}
if (problems.length) {
  console.error(`docs-site:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}

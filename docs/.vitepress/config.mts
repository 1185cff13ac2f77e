// The docs site (`npm run docs:site`): VitePress over docs/, with the API reference TypeDoc makes
// (`npm run docs:api`) under /api/. A link to a page that does not exist fails the build
// (VitePress's dead-link check); scripts/docs-site.ts then checks the built site in Chromium.
import { defineConfig } from "vitepress";

export default defineConfig({
  title: "kubeloop",
  description: "Kubernetes controllers and operators in TypeScript: kopf's ergonomics with controller-runtime's correctness.",
  outDir: "../dist-docs/site",
  cacheDir: "../node_modules/.vitepress-cache",
  cleanUrls: true,
  lastUpdated: false,
  // The API reference is copied in after the build (it is TypeDoc's HTML, not pages of this site).
  ignoreDeadLinks: [/^\/api\//],
  // status.md and architecture.md are the project's own notes; they are pages too, under "Project".
  themeConfig: {
    nav: [
      { text: "Guide", link: "/getting-started" },
      { text: "API reference", link: "/api/index.html", target: "_self" },
      { text: "Changelog", link: "/changelog" },
    ],
    sidebar: [
      {
        text: "Guide",
        items: [
          { text: "Getting started", link: "/getting-started" },
          { text: "A tour", link: "/tour" },
          { text: "Handlers (the kopf level)", link: "/handlers" },
          { text: "Controllers and the Manager", link: "/controllers" },
          { text: "The client", link: "/client" },
          { text: "Webhooks", link: "/webhooks" },
          { text: "Deploying", link: "/deploy" },
          { text: "The command line", link: "/cli" },
          { text: "The local control plane", link: "/control-plane" },
          { text: "Scaling out", link: "/scaling" },
          { text: "Watches, caches and queues", link: "/runtime" },
          { text: "Observability", link: "/observability" },
          { text: "Reliability", link: "/reliability" },
        ],
      },
      {
        text: "Coming from",
        items: [
          { text: "kopf", link: "/from-kopf" },
          { text: "controller-runtime", link: "/from-controller-runtime" },
        ],
      },
      {
        text: "Reference",
        items: [
          { text: "API reference", link: "/api/index.html", target: "_self" },
          { text: "Versions and deprecation", link: "/versioning" },
          { text: "Changelog", link: "/changelog" },
          { text: "Benchmarks", link: "/benchmarks" },
        ],
      },
      {
        text: "Project",
        items: [
          { text: "Architecture", link: "/architecture" },
          { text: "Status", link: "/status" },
        ],
      },
    ],
    search: { provider: "local" },
    outline: { level: [2, 3] },
  },
});

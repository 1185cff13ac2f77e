// Re-renders the side-by-side part of docs/benchmarks.md and its SVG charts from
// docs/benchmarks/peers.json (what `npm run bench` wrote), without running anything:
//   node --import tsx bench/report.ts
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { contenders } from "./peers.js";
import { renderSideBySide, type Results } from "./side-by-side.js";

const docs = join(import.meta.dirname, "..", "docs");
const results = JSON.parse(readFileSync(join(docs, "benchmarks", "peers.json"), "utf8")) as Results;
// Labels only: the commands are not run.
const { markdown, charts } = renderSideBySide(results, contenders("go-peers", "kopf"));
for (const [file, svg] of Object.entries(charts)) writeFileSync(join(docs, "benchmarks", file), svg);
const current = readFileSync(join(docs, "benchmarks.md"), "utf8");
const at = current.indexOf("## Side by side");
writeFileSync(join(docs, "benchmarks.md"), (at >= 0 ? current.slice(0, at) : current) + markdown);

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { startTracing } from "./otel.js";

describe("tracing with the OpenTelemetry Node SDK (the otel option, kubeloop run --otel)", () => {
  const logger = pino({ level: "silent" });
  it("names the package to install when the Node SDK is missing (an optional peer dependency)", async () => {
    const missing = Object.assign(new Error("Cannot find package '@opentelemetry/sdk-node' imported from /app/node_modules/kubeloop/dist/cli/main.js"), { code: "ERR_MODULE_NOT_FOUND" });
    await assert.rejects(startTracing("op", logger, () => Promise.reject(missing)), /tracing \(otel\) needs the OpenTelemetry Node SDK, which is not installed: `npm install @opentelemetry\/sdk-node`/);
  });

  it("passes any other failure on as it is", async () => {
    const broken = new TypeError("broken SDK");
    await assert.rejects(startTracing("op", logger, () => Promise.reject(broken)), (e: unknown) => e === broken);
  });
});

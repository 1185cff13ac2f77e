import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { importTsx } from "./load.js";

describe("importTsx", () => {
  it("says what to do when tsx is not installed (an optional peer dependency)", async () => {
    const missing = Object.assign(new Error("Cannot find package 'tsx' imported from /app/node_modules/kubeloop/dist/cli/main.js"), { code: "ERR_MODULE_NOT_FOUND" });
    await assert.rejects(importTsx("op.ts", () => Promise.reject(missing)), (error: Error) => {
      assert.match(error.message, /^op\.ts is TypeScript, which kubeloop runs through tsx, and tsx is not installed: `npm install --save-dev tsx`, or build it/);
      assert.equal(error.cause, missing);
      return true;
    });
  });

  it("passes any other failure on as it is (a file missing inside an installed tsx too)", async () => {
    const broken = new SyntaxError("tsx itself is broken");
    await assert.rejects(importTsx("op.ts", () => Promise.reject(broken)), (error: unknown) => error === broken);
    const inside = Object.assign(new Error("Cannot find module '/app/node_modules/tsx/dist/esm/api/index.mjs'"), { code: "ERR_MODULE_NOT_FOUND" });
    await assert.rejects(importTsx("op.ts", () => Promise.reject(inside)), (error: unknown) => error === inside);
  });

  it("loads tsx where it is installed", async () => {
    assert.equal(typeof (await importTsx("op.ts")).register, "function");
  });
});

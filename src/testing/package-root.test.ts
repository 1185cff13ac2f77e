import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "./package-root.js";

describe("packageRoot()", () => {
  it("is the directory of kubeloop's package.json, holding the shipped controlplane/ and bin/", () => {
    assert.equal(packageRoot(), resolve(import.meta.dirname, "../.."));
    assert.ok(existsSync(join(packageRoot(), "controlplane", "main.go")));
    assert.ok(existsSync(join(packageRoot(), "bin", "kubeloop.mjs")));
  });
});

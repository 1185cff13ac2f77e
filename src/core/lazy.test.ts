import assert from "node:assert/strict";
import type * as Path from "node:path";
import { describe, it } from "node:test";
import { onFirstUse } from "./lazy.js";

describe("onFirstUse()", () => {
  it("loads on the first call, once; a module supplied before is used instead", () => {
    const path = onFirstUse<typeof Path>("node:path");
    assert.equal(path.loaded, false);
    assert.equal(path().join("a", "b"), "a/b");
    assert.equal(path.loaded, true);
    assert.equal(path(), path());

    const supplied = { marker: true };
    const other = onFirstUse<{ marker: boolean }>("a-module-that-does-not-exist");
    other.provide(supplied);
    assert.equal(other.loaded, true);
    assert.equal(other(), supplied, "no require of the missing module");
    other.provide({ marker: false });
    assert.equal(other(), supplied, "the first module stays");
  });
});

// Registration-time checks of the Operator (no server): options a kopf user may carry over.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigMap } from "../core/builtins.js";
import { Operator } from "./operator.js";

describe("handler registration", () => {
  it("refuses kopf's 'retries' (counted differently) and names 'attempts'; attempts must be ≥ 1", () => {
    const op = new Operator({ name: "reg" });
    assert.throws(() => op.on.create(ConfigMap, async () => {}, { retries: 3 } as never), /'retries' is now 'attempts'.*retries=3 is attempts: 3/);
    assert.throws(() => op.on.create(ConfigMap, async () => {}, { attempts: 0 }), /'attempts' must be an integer ≥ 1/);
    op.on.create(ConfigMap, async () => {}, { attempts: 3 });
  });
});

// deepFreeze(): every object and array inside is frozen in place, however deep; what is not an
// object comes back as it is; a prototype's enumerable properties are not the object's own and
// are left alone.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deepFreeze } from "./objects.js";

describe("deepFreeze()", () => {
  it("freezes objects and arrays at every depth, in place", () => {
    const o = JSON.parse('{"metadata":{"labels":{"a":"b"},"ownerReferences":[{"uid":"u","x":[[{"y":1}]]}]},"data":{"k":"v"},"n":null,"s":"t"}');
    assert.equal(deepFreeze(o), o);
    const all: unknown[] = [o, o.metadata, o.metadata.labels, o.metadata.ownerReferences, o.metadata.ownerReferences[0], o.metadata.ownerReferences[0].x, o.metadata.ownerReferences[0].x[0], o.metadata.ownerReferences[0].x[0][0], o.data];
    for (const [i, v] of all.entries()) assert.ok(Object.isFrozen(v), `value ${i} frozen`);
    assert.throws(() => {
      o.metadata.ownerReferences[0].x[0][0].y = 2;
    }, TypeError);
  });

  it("skips a frozen subtree: it is taken as frozen all the way down", () => {
    const inner = { deep: { v: 1 } };
    const o = { a: Object.freeze({ b: inner }), c: { d: 1 } };
    deepFreeze(o);
    assert.ok(Object.isFrozen(o.c));
    // deepFreeze only ever makes whole frozen trees, so it does not walk into one.
    assert.equal(Object.isFrozen(inner), false);
  });

  it("returns values that are not objects unchanged", () => {
    assert.equal(deepFreeze(null), null);
    assert.equal(deepFreeze(undefined), undefined);
    assert.equal(deepFreeze("s"), "s");
    assert.equal(deepFreeze(3), 3);
  });

  it("freezes only an object's own properties, not its prototype's", () => {
    const proto = { shared: { x: 1 } };
    const o = Object.create(proto) as { own: { y: number }; shared: { x: number } };
    o.own = { y: 1 };
    deepFreeze(o);
    assert.ok(Object.isFrozen(o.own));
    assert.equal(Object.isFrozen(proto.shared), false);
  });
});

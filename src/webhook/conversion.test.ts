// ConversionReview handling without a server: paths through the storage version, a mixed list
// in one review, metadata kept, failures named.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../core/objects.js";
import { convert, parseConversionReview, type Converter } from "./conversion.js";

const obj = (version: string, name: string, spec: Record<string, unknown>): KubeObject => ({ apiVersion: `example.com/${version}`, kind: "Widget", metadata: { name, namespace: "ns", uid: name, resourceVersion: "7" }, spec }) as KubeObject;
const converters: Converter[] = [
  { from: "v1", to: "v2", fn: (o) => ({ ...o, spec: { replicas: (o as { spec: { size: number } }).spec.size } }) },
  { from: "v2", to: "v1", fn: (o) => ({ ...o, spec: { size: (o as { spec: { replicas: number } }).spec.replicas } }) },
  { from: "v2", to: "v3", fn: (o) => ({ ...o, spec: { count: (o as { spec: { replicas: number } }).spec.replicas }, metadata: { name: "renamed", labels: { v3: "yes" } } }) },
];

describe("conversion", () => {
  it("converts a mixed list in one review, directly or through the storage version, keeping metadata but for labels", async () => {
    const answer = await convert({ uid: "u", desiredAPIVersion: "example.com/v3", objects: [obj("v1", "a", { size: 1 }), obj("v2", "b", { replicas: 2 }), obj("v3", "c", { count: 3 })] }, converters, "v2");
    assert.deepEqual(answer.result, { status: "Success" });
    assert.deepEqual(
      answer.convertedObjects.map((o) => [o.apiVersion, o.metadata?.name, o.metadata?.labels, (o as { spec: unknown }).spec]),
      [
        ["example.com/v3", "a", { v3: "yes" }, { count: 1 }],
        ["example.com/v3", "b", { v3: "yes" }, { count: 2 }],
        ["example.com/v3", "c", undefined, { count: 3 }],
      ],
      "v1 → v2 → v3 for a, v2 → v3 for b, c unchanged; the name stays",
    );
  });

  it("fails the review naming the object and the versions when no path exists or a function throws", async () => {
    const none = await convert({ uid: "u", desiredAPIVersion: "example.com/v1", objects: [obj("v3", "a", {})] }, converters, "v2");
    assert.equal(none.result.status, "Failure");
    assert.match((none.result as { message: string }).message, /no conversion from v3 to v1/);
    const throwing = await convert({ uid: "u", desiredAPIVersion: "example.com/v2", objects: [obj("v1", "x", {})] }, [{ from: "v1", to: "v2", fn: () => { throw new Error("bad size"); } }], "v2");
    assert.match((throwing.result as { message: string }).message, /ns\/x from v1 to v2 failed: bad size/);
  });

  it("refuses malformed reviews with a reason", () => {
    assert.match(String(parseConversionReview({ kind: "AdmissionReview" })), /not "ConversionReview"/);
    assert.match(String(parseConversionReview({ kind: "ConversionReview", apiVersion: "apiextensions.k8s.io/v1beta1" })), /only apiextensions.k8s.io\/v1/);
    assert.match(String(parseConversionReview({ kind: "ConversionReview", apiVersion: "apiextensions.k8s.io/v1", request: { uid: "u", desiredAPIVersion: "x/v1", objects: [1] } })), /list of objects/);
  });
});

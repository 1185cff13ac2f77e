// The configurations runOperator writes with marker webhooks (its wait until the API server calls
// them): markers first, each matching only its own probes, the operator's hooks never seeing one.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigMap } from "../core/builtins.js";
import { buildWebhookConfigurations, markerLabel, markerName, markerPath, type AdmissionHook } from "./registration.js";

const hook = (type: AdmissionHook["type"], id: string): AdmissionHook => ({ type, id, kind: ConfigMap, operations: ["CREATE"], failurePolicy: "Fail", timeoutSeconds: 5, sideEffects: "None" });
const build = (marked: boolean, operator = "op") =>
  buildWebhookConfigurations(operator, [hook("validate", "v"), hook("mutate", "m")], {
    clientConfig: (h) => ({ url: `https://x/${h.type}/${h.id}` }),
    mapping: () => ({ plural: "configmaps", namespaced: true }),
    ...(marked ? { marker: (type: "validating" | "mutating") => ({ url: `https://x${markerPath(type, "https://x", "CA")}` }) } : {}),
  });

describe("webhook configurations with markers (runOperator's wait)", () => {
  it("without markers: the hooks only, no object selector", () => {
    const c = build(false);
    assert.deepEqual(c.validating?.webhooks?.map((w) => w.name), ["v.op.kubeloop.dev"]);
    assert.equal(c.validating?.webhooks?.[0]?.objectSelector, undefined);
  });

  it("with markers: each configuration's marker first, matching only its own label; the hooks never see a marker object", () => {
    const c = build(true);
    for (const [type, config] of [["validating", c.validating], ["mutating", c.mutating]] as const) {
      const [marker, ...rest] = config?.webhooks ?? [];
      assert.equal(marker?.name, markerName("op"));
      assert.match(marker?.clientConfig.url ?? "", new RegExp(`^https://x/marker/${type}/[0-9a-f]{16}$`));
      assert.equal(marker?.failurePolicy, "Fail", "a marker not reached refuses its probe naming itself: in effect");
      const label = markerLabel("op", type);
      assert.deepEqual(marker?.objectSelector, { matchLabels: { [label.key]: label.value } });
      assert.equal(rest.length, 1);
      assert.deepEqual(rest[0]?.objectSelector?.matchExpressions?.map((e) => [e.key, e.operator]), [
        [markerLabel("op", "validating").key, "DoesNotExist"],
        [markerLabel("op", "mutating").key, "DoesNotExist"],
      ]);
    }
  });

  it("the marker's path names the URL and CA it is served with (an earlier run's configuration is not taken for this one)", () => {
    assert.equal(markerPath("validating", "https://a:1", "CA"), markerPath("validating", "https://a:1", "CA"), "replicas on one URL and CA write the same");
    assert.notEqual(markerPath("validating", "https://a:1", "CA"), markerPath("validating", "https://a:2", "CA"));
    assert.notEqual(markerPath("validating", "https://a:1", "CA"), markerPath("validating", "https://a:1", "CA2"));
  });

  it("a label value holds 63 characters: a longer operator name is hashed", () => {
    const long = "a".repeat(100);
    assert.ok(markerLabel(long, "validating").value.length <= 63);
    assert.equal(markerLabel("short", "validating").value, "short");
  });
});

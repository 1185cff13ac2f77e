// The short mode of `npm run chaos` (scripts/chaos.ts): the same harness and checks, fewer
// objects and seconds. Its own control plane, because the scenarios kill and restart etcd and
// the API server; the watch cache is off and etcd is compacted every 5 s, so resumes after a
// fault meet 410s.
import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { startControlPlane, type ControlPlane } from "../src/entries/testing.js";
import { FAULTS, runChaos, type ChaosReport } from "./chaos/harness.js";

let cp: ControlPlane;
before(async () => {
  cp = await startControlPlane({ kubeconfig: false, apiServerFlags: ["--watch-cache=false", "--etcd-compaction-interval=5s"], controllers: [] });
});
after(async () => {
  await cp?.stop();
});

function assertSound(t: TestContext, r: ChaosReport): void {
  t.diagnostic(
    `injected ${JSON.stringify(r.injected)}; driver ${JSON.stringify(r.driver)}; ${r.live} live; ${r.createRuns} create runs, ${r.repeatsAfterKill} repeats after SIGKILL; ` +
      `${r.lists} lists (${r.gone} HTTP 410); storms ≤ ${r.stormRate.maxPerSecond} req/s; converged ${r.convergeMs} ms after the churn; ${r.operatorStarts} operator starts; ` +
      `${r.vanished} removed with the finalizer by the API server's race (kubernetes/kubernetes#77988), ${r.vanishedLostToKill.length} of them lost to a SIGKILL before their delete handlers ran`,
  );
  for (const lost of r.vanishedLostToKill) t.diagnostic(`lost to a SIGKILL: ${lost}`);
  assert.deepEqual(r.crashes, [], "the operator never exits on its own");
  assert.deepEqual(r.unexplainedRepeats, [], "a create success is repeated only after a SIGKILL between the handler and its record");
  assert.deepEqual(r.notKept, [], "every object keeps the result of its last (only) successful create run");
  assert.deepEqual(r.lastChangeMissed, [], "every object is handled at its final spec");
  assert.deepEqual(r.deleteHandlerMissed, [], "every deleted object that was handled ran its delete handler (unless the API server removed it with the finalizer and the only process that knew was SIGKILLed right after)");
  assert.deepEqual(r.notGone, [], "no deleted object is left behind by a finalizer");
  assert.ok(r.driver.creates > 0 && r.driver.updates > 0 && r.driver.deletes > 0, "the churn happened");
}

describe("chaos, short mode", () => {
  it("every fault in turn during churn: the final state converges, no success lost or repeated", { timeout: 240_000 }, async (t) => {
    const r = await runChaos({ cp, objects: 40, churnPerSecond: 8, durationMs: 0, faultCount: FAULTS.length, faults: FAULTS, faultEveryMs: 4_000, faultLengthMs: 2_000, qps: 0 });
    assertSound(t, r);
    assert.equal(Object.values(r.injected).reduce((a, b) => a + b, 0), FAULTS.length, "every fault was injected");
    assert.ok(r.stormRate.maxPerSecond <= 20, `the operator backs off in 429/503 storms (≤ ${r.stormRate.maxPerSecond} requests/s without a client rate limit)`);
  });

  it("the operator SIGKILLed 20 times in a row during churn: each create success kept once", { timeout: 240_000 }, async (t) => {
    const r = await runChaos({ cp, objects: 60, churnPerSecond: 8, durationMs: 0, faultCount: 20, faults: ["operator-sigkill"], faultEveryMs: 1_500, faultLengthMs: 0, qps: 0 });
    assertSound(t, r);
    assert.equal(r.injected["operator-sigkill"], 20);
    assert.equal(r.operatorStarts, 21);
  });
});

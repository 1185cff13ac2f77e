// Whether the API server of the local control plane still lets a DELETE racing a PATCH that
// adds a finalizer remove the object although both succeed (kubernetes/kubernetes#77988,
// #110521). kubeloop's handler level runs delete handlers for such objects (docs/handlers.md);
// this shows the race is real on the Kubernetes version kubeloop builds. Not part of the tests:
// it checks Kubernetes, not kubeloop.
//   node --import tsx scripts/finalizer-race.ts [ITERATIONS]   (default 300; ~30 s)
// Prints {"iterations","bothSucceeded","goneDespiteFinalizer"}. On v1.37.1, 2026-12-01:
// 10 of 292 pairs where both succeeded left no object.
import { Client, ConfigMap, Namespace } from "../src/entries/index.js";
import { startControlPlane } from "../src/entries/testing.js";

const iterations = Number(process.argv[2] ?? 300);
const cp = await startControlPlane({ kubeconfig: false, controllers: [] });
const client = await Client.load({ path: cp.kubeconfigPath, rateLimit: false });
try {
  await client.resource(Namespace).create({ metadata: { name: "race" } });
  const cms = client.resource(ConfigMap).namespace("race");
  let both = 0;
  let gone = 0;
  for (let i = 0; i < iterations; i++) {
    const name = `r${i}`;
    await cms.create({ metadata: { name } });
    const [patch, del] = await Promise.allSettled([
      cms.patch(name, { metadata: { finalizers: ["race.example.com/f"] } }, { type: "merge" }),
      new Promise((r) => setTimeout(r, Math.random() * 4)).then(() => cms.delete(name)),
    ]);
    if (patch.status !== "fulfilled" || del.status !== "fulfilled") continue; // the DELETE won outright: the PATCH got a 404
    both++;
    // With the finalizer in place, the DELETE must only have set deletionTimestamp.
    if (!(await cms.get(name).catch(() => undefined))) gone++;
    else await cms.patch(name, { metadata: { finalizers: null } }, { type: "merge" });
  }
  process.stdout.write(`${JSON.stringify({ iterations, bothSucceeded: both, goneDespiteFinalizer: gone })}\n`);
} finally {
  await client.close();
  await cp.stop();
}

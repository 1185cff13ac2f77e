// What a wake-up costs on this machine, apart from kubeloop: a Node process woken by a timer at a
// given rate to parse one watch event's JSON and store it, its CPU per wake-up at each rate. On a
// small shared VM the cost of the same work rises as wake-ups grow sparse (the process finds its
// caches and code colder each time); the sharding figures (docs/scaling.md) meet this effect, as
// each of N replicas receives 1/N of the events. Run: node bench/wakeups.mjs
const line = JSON.stringify({
  type: "MODIFIED",
  object: {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "cm-1", namespace: "x", uid: "1234-5678-9abc", resourceVersion: "123456", creationTimestamp: "2026-12-07T00:00:00Z", managedFields: [{ manager: "m", operation: "Update", apiVersion: "v1", time: "2026-12-07T00:00:00Z", fieldsType: "FieldsV1", fieldsV1: { "f:data": { "f:a": {} } } }] },
    data: { a: "x".repeat(200), sent: "1", seq: "2" },
  },
});
const store = new Map();
function work(i) {
  const event = JSON.parse(line);
  event.object.metadata.name = `cm-${i % 1000}`;
  store.set(event.object.metadata.name, Object.freeze(event.object));
}
for (let i = 0; i < 20_000; i++) work(i); // the JIT warmed up first
for (const perSecond of [1000, 400, 200, 100]) {
  const n = Math.min(2000, perSecond * 5);
  const before = process.cpuUsage();
  await new Promise((resolve) => {
    let i = 0;
    const timer = setInterval(() => {
      work(i);
      if (++i >= n) {
        clearInterval(timer);
        resolve();
      }
    }, 1000 / perSecond);
  });
  const spent = process.cpuUsage(before);
  console.log(`${perSecond} wake-ups/s: ${((spent.user + spent.system) / n).toFixed(1)} µs of CPU each`);
}

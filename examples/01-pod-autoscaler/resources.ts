// The custom resources of the pod autoscaler example.
//
// - WorkQueue: a queue of work items (`spec.items`); its length is the load metric. On the local
//   control plane there is no metrics-server, so the load is something the cluster itself holds.
// - PodAutoscaler: scales a Deployment between minReplicas and maxReplicas so that each replica
//   has at most `targetItemsPerReplica` items; scale-downs wait out a stabilization window.
import { ConditionsSchema, Type, defineResource, type ObjectOf } from "kubeloop";

export const WorkQueue = defineResource({
  group: "examples.kubeloop.dev",
  version: "v1",
  kind: "WorkQueue",
  shortNames: ["wq"],
  spec: Type.Object({ items: Type.Array(Type.String()) }),
});

export const PodAutoscaler = defineResource({
  group: "examples.kubeloop.dev",
  version: "v1",
  kind: "PodAutoscaler",
  shortNames: ["pas"],
  spec: Type.Object({
    /** The Deployment to scale, in the autoscaler's namespace. */
    target: Type.String({ minLength: 1 }),
    minReplicas: Type.Integer({ minimum: 0 }),
    maxReplicas: Type.Integer({ minimum: 1 }),
    metric: Type.Object({
      /** The WorkQueue whose item count is the load. */
      workQueue: Type.String({ minLength: 1 }),
      targetItemsPerReplica: Type.Integer({ minimum: 1 }),
    }),
    /** Scale down only to the highest recommendation of this many seconds. Default 300. */
    stabilizationWindowSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
  }),
  status: Type.Object({
    currentReplicas: Type.Optional(Type.Integer()),
    desiredReplicas: Type.Optional(Type.Integer()),
    currentItems: Type.Optional(Type.Integer()),
    lastScaleTime: Type.Optional(Type.String({ format: "date-time" })),
    observedGeneration: Type.Optional(Type.Integer()),
    /** Recent recommendations (epoch ms, replicas), kept for the stabilization window: restarts lose nothing. */
    recommendations: Type.Optional(Type.Array(Type.Object({ at: Type.Integer(), replicas: Type.Integer() }))),
    conditions: Type.Optional(ConditionsSchema),
  }),
  printerColumns: [
    { name: "Target", type: "string", jsonPath: ".spec.target" },
    { name: "Min", type: "integer", jsonPath: ".spec.minReplicas" },
    { name: "Max", type: "integer", jsonPath: ".spec.maxReplicas" },
    { name: "Items", type: "integer", jsonPath: ".status.currentItems" },
    { name: "Replicas", type: "integer", jsonPath: ".status.currentReplicas" },
  ],
});

export type PodAutoscalerObject = ObjectOf<typeof PodAutoscaler>;
export type WorkQueueObject = ObjectOf<typeof WorkQueue>;

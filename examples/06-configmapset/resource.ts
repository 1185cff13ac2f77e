// The ConfigMapSet custom resource: "keep N ConfigMaps with this data", like a ReplicaSet
// keeps N Pods. `defineResource` gives both the object's static type and its CRD.
import { defineResource, Type, type ObjectOf } from "kubeloop";

const Condition = Type.Object({
  type: Type.String(),
  status: Type.Union([Type.Literal("True"), Type.Literal("False"), Type.Literal("Unknown")]),
  reason: Type.String(),
  message: Type.Optional(Type.String()),
  observedGeneration: Type.Optional(Type.Integer()),
  lastTransitionTime: Type.String({ format: "date-time" }),
});

export const ConfigMapSet = defineResource({
  group: "examples.kubeloop.dev",
  version: "v1",
  kind: "ConfigMapSet",
  shortNames: ["cms"],
  spec: Type.Object({
    replicas: Type.Integer({ minimum: 0, maximum: 100 }),
    data: Type.Optional(Type.Record(Type.String(), Type.String())),
  }),
  status: Type.Object({
    replicas: Type.Optional(Type.Integer()),
    observedGeneration: Type.Optional(Type.Integer()),
    // A list keyed by `type`, so server-side apply merges conditions by type.
    conditions: Type.Optional(Type.Array(Condition, { "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] })),
  }),
  printerColumns: [
    { name: "Desired", type: "integer", jsonPath: ".spec.replicas" },
    { name: "Current", type: "integer", jsonPath: ".status.replicas" },
  ],
});

export type ConfigMapSetObject = ObjectOf<typeof ConfigMapSet>;
export const crd = ConfigMapSet.crd;

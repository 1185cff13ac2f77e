// The ConfigMapSet custom resource: "keep N ConfigMaps with this data", like a ReplicaSet
// keeps N Pods. `defineResource` gives both the object's static type and its CRD.
import { ConditionsSchema, defineResource, Type, type ObjectOf } from "kubeloop";

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
    conditions: Type.Optional(ConditionsSchema),
  }),
  printerColumns: [
    { name: "Desired", type: "integer", jsonPath: ".spec.replicas" },
    { name: "Current", type: "integer", jsonPath: ".status.replicas" },
  ],
});

export type ConfigMapSetObject = ObjectOf<typeof ConfigMapSet>;

// The ConfigMapSet custom resource: "keep N ConfigMaps with this data", like a ReplicaSet
// keeps N Pods. Until kubeloop generates CRDs from schemas (manifests layer), the CRD is
// written out here.
import { kindOf, type KubeObject, type Condition } from "kubeloop";
import type { CustomResourceDefinition } from "kubernetes-types/apiextensions/v1.js";

export interface ConfigMapSetObject extends KubeObject {
  spec: { replicas: number; data?: Record<string, string> };
  status?: { replicas?: number; observedGeneration?: number; conditions?: Condition[] };
}

export const ConfigMapSet = kindOf<ConfigMapSetObject>("examples.kubeloop.dev/v1", "ConfigMapSet", { plural: "configmapsets", namespaced: true });

// kubernetes-types' JSONSchemaProps lacks the x-kubernetes-* extensions, hence the cast at the end.
export const crd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "configmapsets.examples.kubeloop.dev" },
  spec: {
    group: "examples.kubeloop.dev",
    scope: "Namespaced",
    names: { plural: "configmapsets", singular: "configmapset", kind: "ConfigMapSet", shortNames: ["cms"] },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: "Desired", type: "integer", jsonPath: ".spec.replicas" },
          { name: "Current", type: "integer", jsonPath: ".status.replicas" },
        ],
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                required: ["replicas"],
                properties: {
                  replicas: { type: "integer", minimum: 0, maximum: 100 },
                  data: { type: "object", additionalProperties: { type: "string" } },
                },
              },
              status: {
                type: "object",
                properties: {
                  replicas: { type: "integer" },
                  observedGeneration: { type: "integer" },
                  conditions: {
                    type: "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["type"],
                    items: {
                      type: "object",
                      required: ["type", "status", "reason", "lastTransitionTime"],
                      properties: {
                        type: { type: "string" },
                        status: { type: "string", enum: ["True", "False", "Unknown"] },
                        reason: { type: "string" },
                        message: { type: "string" },
                        observedGeneration: { type: "integer" },
                        lastTransitionTime: { type: "string", format: "date-time" },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    ],
  },
} as unknown as CustomResourceDefinition;

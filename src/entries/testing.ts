// kubeloop/testing: the local control plane harness, the fault proxy, the in-process operator
// runner, and the fakes for tests without a server (ScriptedEvents, ManualClock).
/**
 * Test helpers: the local control plane (a real kube-apiserver, etcd and controllers, optionally simulated nodes), fault proxies, an in-process operator runner, and fakes for tests without a server (`ScriptedEvents`, `ManualClock`).
 * @module kubeloop/testing
 */
export {
  startControlPlane,
  DEFAULT_CONTROLLERS,
  DEFAULT_FEATURE_GATES,
  type ControlPlane,
  type ControlPlaneOptions,
  type IssuedUser,
} from "../testing/control-plane/control-plane.js";
export { ensureControlPlaneBinary, type BuildOptions, type BuildProgress } from "../testing/control-plane/binaries.js";
export { ControlPlaneError, type ControlPlaneErrorReason } from "../testing/control-plane/errors.js";
export { WORKLOAD_CONTROLLERS } from "../testing/control-plane/nodes.js";
export { cordon, failPod, waitForRollout, type FailPodOptions } from "../testing/workloads.js";
export type { KeyPairPem } from "../core/pki.js";
export { FaultProxy } from "../testing/fault-proxy.js";
export { HttpFaultProxy, type HttpFault, type HttpFaultProxyTarget, type ProxiedRequest } from "../testing/http-fault-proxy.js";
export { ScriptedEvents } from "../testing/scripted-events.js";
export { ManualClock } from "../core/clock.js";
export { runOperator, installCrd, waitFor, type RunOperatorOptions, type OperatorUnderTest } from "../testing/operator.js";
export type { CrdInstalled } from "../manifests/install.js";

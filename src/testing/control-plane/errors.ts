// Errors of the local control plane harness, discriminated by `reason`.

/** Why the control plane could not be built, started or stopped. */
export type ControlPlaneErrorReason =
  /** No Go toolchain to build the control plane with. */
  | "GoNotFound"
  /** `go build` failed; `logTail` holds the compiler's last lines. */
  | "BuildFailed"
  /** A component exited while starting or running; `component` and `logTail` say which and why. */
  | "ComponentExited"
  /** /readyz was not reached before the deadline. */
  | "NotReady"
  /** The options, data dir or kubeconfig given cannot be used. */
  | "BadOptions";

/** An error of the local control plane harness. */
export class ControlPlaneError extends Error {
  override readonly name = "ControlPlaneError";
  readonly reason: ControlPlaneErrorReason;
  /** The component concerned (`etcd`, `kube-apiserver`, `kube-controller-manager`, `kube-scheduler`, `kwok`), if any. */
  readonly component: string | undefined;
  /** The last lines the component (or the build) printed. */
  readonly logTail: readonly string[];

  constructor(
    reason: ControlPlaneErrorReason,
    message: string,
    options: { cause?: unknown; component?: string; logTail?: readonly string[] } = {},
  ) {
    const tail = options.logTail?.length ? `\n--- last lines ---\n${options.logTail.join("\n")}` : "";
    super(`${message}${tail}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.component = options.component;
    this.logTail = options.logTail ?? [];
  }
}

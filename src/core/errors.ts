// Errors of Kubernetes API calls: one class per kind of failure a caller acts on differently,
// each carrying the server's Status object. No I/O here; the client builds them from responses.
import type { Status } from "./kube/meta/v1.js";

/**
 * Why an API call failed. Server reasons follow metav1.StatusReason; `Network`, `Timeout` and
 * `Aborted` are the client's own.
 */
export type ApiErrorReason =
  | "NotFound"
  | "AlreadyExists"
  | "Conflict"
  | "Gone"
  | "Expired"
  | "Invalid"
  | "Forbidden"
  | "Unauthorized"
  | "TooManyRequests"
  | "ServerTimeout"
  | "Timeout"
  | "BadRequest"
  | "MethodNotAllowed"
  | "UnsupportedMediaType"
  | "NotAcceptable"
  | "RequestEntityTooLarge"
  | "InternalError"
  | "ServiceUnavailable"
  | "Unknown"
  | "Network"
  | "Aborted";

/** One field-level cause of an `Invalid` (or other) failure. */
export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** What was called, for messages: "GET /api/v1/namespaces/default/configmaps/x". */
export interface RequestInfo {
  method: string;
  path: string;
}

/** A failed Kubernetes API call. `instanceof` one of the subclasses, or switch on `reason`. */
export class ApiError extends Error {
  override name = "ApiError";
  /** The failure kind (see {@link ApiErrorReason}). */
  readonly reason: ApiErrorReason;
  /** HTTP status code; 0 when no response was received. */
  readonly code: number;
  /** The server's Status object, when it sent one. */
  readonly status: Status | undefined;
  readonly request: RequestInfo | undefined;

  constructor(
    reason: ApiErrorReason,
    message: string,
    options: { code?: number; status?: Status; request?: RequestInfo; cause?: unknown } = {},
  ) {
    super(options.request ? `${options.request.method} ${options.request.path}: ${message}` : message, {
      cause: options.cause,
    });
    this.reason = reason;
    this.code = options.code ?? 0;
    this.status = options.status;
    this.request = options.request;
  }

  /** Field-level causes from the Status details (validation errors, conflicts of server-side apply). */
  get causes(): StatusCause[] {
    return (this.status?.details?.causes ?? []) as StatusCause[];
  }
}

/** 404: the object (or the resource type) does not exist. */
export class NotFoundError extends ApiError {
  override name = "NotFoundError";
}
/**
 * A write bound to an object's uid found another object under its name (deleted and created
 * again meanwhile), or none: the object it was computed for is gone. A {@link NotFoundError},
 * so code that treats "gone" as done does the same here.
 */
export class ObjectReplacedError extends NotFoundError {
  override name = "ObjectReplacedError";
  /** The uid the write was bound to, and the uid now under the name (undefined: nothing is). */
  constructor(
    readonly expectedUid: string,
    readonly actualUid: string | undefined,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super("NotFound", message, options);
  }
}

/** 409 AlreadyExists: create of a name that exists. */
export class AlreadyExistsError extends ApiError {
  override name = "AlreadyExistsError";
}
/** 409 Conflict: a stale resourceVersion, or a server-side apply field conflict (see `causes`). */
export class ConflictError extends ApiError {
  override name = "ConflictError";
}
/** 410 Gone / Expired: a resourceVersion or continue token too old; relist. */
export class GoneError extends ApiError {
  override name = "GoneError";
}
/** 422 Invalid: the object failed validation; `causes` names the fields. */
export class InvalidError extends ApiError {
  override name = "InvalidError";
}
/** 403: authenticated, not authorized (RBAC). */
export class ForbiddenError extends ApiError {
  override name = "ForbiddenError";
}
/** 401: not authenticated (bad or expired credentials). */
export class UnauthorizedError extends ApiError {
  override name = "UnauthorizedError";
}
/** 429: throttled by the server; `retryAfterMs` is the server's Retry-After. */
export class TooManyRequestsError extends ApiError {
  override name = "TooManyRequestsError";
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: ConstructorParameters<typeof ApiError>[2] & { retryAfterMs?: number }) {
    super("TooManyRequests", message, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}
/** 504 or reason ServerTimeout: the server did not finish in time; the call may be retried. */
export class ServerTimeoutError extends ApiError {
  override name = "ServerTimeoutError";
}
/** No HTTP answer: connection refused or reset, DNS, TLS. `cause` holds the system error. */
export class NetworkError extends ApiError {
  override name = "NetworkError";
}
/** The client-side deadline (`timeoutMs`) passed before the answer. */
export class RequestTimeoutError extends ApiError {
  override name = "RequestTimeoutError";
}

/**
 * Builds the error for a non-2xx response from its status code and (if any) Status body.
 * The Status `reason` decides where it is specific (409 AlreadyExists vs Conflict, 410 Expired).
 */
export function errorFromResponse(
  code: number,
  body: unknown,
  request: RequestInfo,
  retryAfterMs?: number,
): ApiError {
  const status = isStatus(body) ? body : undefined;
  const message = status?.message || (typeof body === "string" && body.trim() ? body.trim().slice(0, 500) : `HTTP ${code}`);
  const reason = (status?.reason || reasonForCode(code)) as ApiErrorReason;
  const options = { code, ...(status ? { status } : {}), request };
  switch (code) {
    case 404:
      return new NotFoundError("NotFound", message, options);
    case 409:
      return reason === "AlreadyExists"
        ? new AlreadyExistsError("AlreadyExists", message, options)
        : new ConflictError("Conflict", message, options);
    case 410:
      return new GoneError(reason === "Expired" ? "Expired" : "Gone", message, options);
    case 422:
      return new InvalidError("Invalid", message, options);
    case 403:
      return new ForbiddenError("Forbidden", message, options);
    case 401:
      return new UnauthorizedError("Unauthorized", message, options);
    case 429:
      return new TooManyRequestsError(message, { ...options, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
    case 504:
      return new ServerTimeoutError("Timeout", message, options);
  }
  if (reason === "ServerTimeout" || reason === "Timeout") return new ServerTimeoutError(reason, message, options);
  return new ApiError(reason, message, options);
}

function reasonForCode(code: number): ApiErrorReason {
  const table: Record<number, ApiErrorReason> = {
    400: "BadRequest",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
  };
  return table[code] ?? "Unknown";
}

function isStatus(body: unknown): body is Status {
  return typeof body === "object" && body !== null && (body as { kind?: unknown }).kind === "Status";
}

/**
 * An error that retrying cannot fix (a bad spec, a permission missing by design), at either
 * level: a reconcile that throws it is not retried until the object changes (the default error
 * policy); a handler that throws it (or its kin `PermanentError`) fails permanently.
 */
export class TerminalError extends Error {
  override name = "TerminalError";
  readonly reason: string = "Terminal";
}

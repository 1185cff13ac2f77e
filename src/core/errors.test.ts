import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as errors from "./errors.js";

const request = { method: "GET", path: "/api/v1/namespaces/x/configmaps/y" };
const status = (code: number, reason: string, extra: Record<string, unknown> = {}) => ({ kind: "Status", status: "Failure", code, reason, message: `${reason}!`, ...extra });

describe("errorFromResponse", () => {
  it("maps codes and reasons to typed errors carrying the Status", () => {
    const cases: [number, string, new (...args: never[]) => errors.ApiError, errors.ApiErrorReason][] = [
      [404, "NotFound", errors.NotFoundError, "NotFound"],
      [409, "AlreadyExists", errors.AlreadyExistsError, "AlreadyExists"],
      [409, "Conflict", errors.ConflictError, "Conflict"],
      [410, "Expired", errors.GoneError, "Expired"],
      [410, "Gone", errors.GoneError, "Gone"],
      [422, "Invalid", errors.InvalidError, "Invalid"],
      [403, "Forbidden", errors.ForbiddenError, "Forbidden"],
      [401, "Unauthorized", errors.UnauthorizedError, "Unauthorized"],
      [504, "Timeout", errors.ServerTimeoutError, "Timeout"],
      [500, "ServerTimeout", errors.ServerTimeoutError, "ServerTimeout"],
      [415, "UnsupportedMediaType", errors.ApiError, "UnsupportedMediaType"],
    ];
    for (const [code, reason, type, expected] of cases) {
      const error = errors.errorFromResponse(code, status(code, reason), request);
      assert.ok(error instanceof type, `${code} ${reason} → ${type.name}`);
      assert.equal(error.reason, expected);
      assert.equal(error.code, code);
      assert.equal(error.status?.reason, reason);
      assert.equal(error.message, `GET ${request.path}: ${reason}!`);
    }
  });

  it("exposes validation causes and Retry-After", () => {
    const invalid = errors.errorFromResponse(422, status(422, "Invalid", { details: { causes: [{ field: "spec.size", reason: "FieldValueInvalid", message: "must be >= 1" }] } }), request);
    assert.deepEqual(invalid.causes, [{ field: "spec.size", reason: "FieldValueInvalid", message: "must be >= 1" }]);
    const throttled = errors.errorFromResponse(429, status(429, "TooManyRequests"), request, 2000);
    assert.ok(throttled instanceof errors.TooManyRequestsError);
    assert.equal(throttled.retryAfterMs, 2000);
  });

  it("keeps a non-Status body as the message, and falls back on the code", () => {
    const proxy = errors.errorFromResponse(502, "<html>bad gateway</html>", request);
    assert.equal(proxy.reason, "Unknown");
    assert.match(proxy.message, /bad gateway/);
    assert.equal(errors.errorFromResponse(503, "", request).reason, "ServiceUnavailable");
    assert.equal(errors.errorFromResponse(404, undefined, request).message, `GET ${request.path}: HTTP 404`);
  });
});

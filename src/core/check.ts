// Option checks shared by the modules that take options, so each kind of mistake fails the same
// way when the object that takes the option is made: numbers out of range and ports (RangeError
// "<label> must be <rule> (got <value>)"), empty hosts, values outside a set, DNS names.

/** What a numeric option must be. */
export type NumberRule = "integer ≥ 0" | "integer ≥ 1" | "> 0" | "≥ 0";

const passes: Record<NumberRule, (v: number) => boolean> = {
  "integer ≥ 0": (v) => Number.isInteger(v) && v >= 0,
  "integer ≥ 1": (v) => Number.isInteger(v) && v >= 1,
  "> 0": (v) => Number.isFinite(v) && v > 0,
  "≥ 0": (v) => Number.isFinite(v) && v >= 0,
};

/**
 * Throws a RangeError naming `label` unless `value` follows `rule`. Undefined passes (the default
 * applies) unless `required`; `note` follows the rule in the message (e.g. " (0: no deadline)").
 */
export function checkNumber(label: string, value: number | undefined, rule: NumberRule, options: { note?: string; required?: boolean } = {}): void {
  if (value === undefined && !options.required) return;
  if (value !== undefined && passes[rule](value)) return;
  const what = rule.startsWith("integer") ? `an ${rule}` : `a finite number ${rule}`;
  throw new RangeError(`${label} must be ${what}${options.note ?? ""} (got ${value})`);
}

/** Throws a RangeError naming `label` unless `value` is undefined or a port number (0: a free one). */
export function checkPort(label: string, value: number | undefined): void {
  if (value === undefined || (Number.isInteger(value) && value >= 0 && value <= 65_535)) return;
  throw new RangeError(`${label} must be a port number 0–65535 (got ${value})`);
}

/** Throws a TypeError naming `label` unless `value` is undefined or a non-empty string (a host name or address). */
export function checkHost(label: string, value: string | undefined): void {
  if (value === undefined || (typeof value === "string" && value !== "")) return;
  throw new TypeError(`${label} must be a non-empty host name or address (got ${JSON.stringify(value)})`);
}

/** Throws a TypeError naming `label` unless `value` is undefined or one of `allowed`. */
export function checkOneOf(label: string, value: unknown, allowed: readonly unknown[]): void {
  if (value !== undefined && !allowed.includes(value)) throw new TypeError(`${label} ${JSON.stringify(value)} is not one of ${allowed.join(", ")}`);
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Whether `value` is a lower-case DNS subdomain (RFC 1123: labels of letters, digits and '-', dots, ≤ 253 characters). */
export function isDnsSubdomain(value: string): boolean {
  return value.length <= 253 && DNS_SUBDOMAIN.test(value);
}

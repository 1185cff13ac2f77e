// One check for numeric options, so every option out of range fails the same way: a RangeError
// "<label> must be <rule><note> (got <value>)" when the object that takes it is made.

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

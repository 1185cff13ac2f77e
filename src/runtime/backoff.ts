// Exponential backoff with jitter, reset after a healthy period: how the watcher waits
// between failed attempts (0.8 s → 30 s by default, as kube-runtime).

/** Backoff settings. */
export interface BackoffOptions {
  /** First delay. Default 800 ms. */
  initialMs?: number;
  /** Largest delay. Default 30 000 ms. */
  maxMs?: number;
  /** Growth per failure. Default 2. */
  factor?: number;
  /** Random spread: a delay d becomes d × (1 − jitter/2 … 1 + jitter/2). Default 0.5. */
  jitter?: number;
}

/** Successive delays; `reset()` after success starts again from the first. */
export class Backoff {
  private failures = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;

  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.initialMs = options.initialMs ?? 800;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 0.5;
  }

  /** The next delay, in ms. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * this.factor ** this.failures);
    this.failures++;
    const spread = 1 + this.jitter * (this.random() - 0.5);
    return Math.min(this.maxMs, Math.round(base * spread));
  }

  reset(): void {
    this.failures = 0;
  }

  /** How many delays were handed out since the last reset. */
  get attempts(): number {
    return this.failures;
  }
}

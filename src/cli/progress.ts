// The first control-plane build's progress on one terminal line, redrawn in place: how many of
// the packages the build needs are compiled, which one, and about how long is left. Nothing is
// drawn when stderr is not a terminal (CI logs keep the plain start, 30 s and end lines).
import type { BuildProgress } from "../testing/control-plane/binaries.js";

/** `kubeloop: building 1234/3456 packages (36%), about 4 min left · k8s.io/…`, cut to `width`. */
export function formatBuildProgress(p: BuildProgress, width: number): string {
  const percent = p.total ? Math.floor((p.compiled / p.total) * 100) : 0;
  const left = p.remainingMs === undefined ? "" : p.remainingMs === 0 ? ", linking" : `, about ${duration(p.remainingMs)} left`;
  // Short enough that 80 columns keep the package's name in view (the line before says what is built).
  const text = `kubeloop: building ${p.compiled}/${p.total} packages (${percent}%)${left} · ${p.current}`;
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  return `${Math.round(s / 60)} min`;
}

/** A line that shows the latest progress (at most ten times a second); `clear()` before other output. */
export interface ProgressLine {
  update(p: BuildProgress): void;
  clear(): void;
}

/** The progress line on `stream`, or undefined when it is not a terminal. */
export function progressLine(stream: NodeJS.WriteStream): ProgressLine | undefined {
  if (!stream.isTTY) return undefined;
  let drawn = false;
  let last = 0;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 100 && p.compiled < p.total) return;
      last = now;
      stream.write(`\r\u001b[K${formatBuildProgress(p, (stream.columns || 80) - 1)}`);
      drawn = true;
    },
    clear() {
      if (drawn) stream.write("\r\u001b[K");
      drawn = false;
    },
  };
}

/**
 * The options a command hands to a build or a start: `onProgress` writes `say`'s lines, clearing
 * the progress line first; `onBuildProgress` draws it (on a terminal only).
 */
export function buildReporting(stream: NodeJS.WriteStream, say: (message: string) => void): { onProgress: (message: string) => void; onBuildProgress?: (p: BuildProgress) => void } {
  const line = progressLine(stream);
  const onProgress = (message: string) => {
    line?.clear();
    say(message);
  };
  return line ? { onProgress, onBuildProgress: line.update } : { onProgress };
}

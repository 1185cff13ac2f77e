// The build's progress line: what it says, cut to the terminal, drawn only on a terminal.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatBuildProgress, progressLine } from "./progress.js";

const at = (compiled: number, remainingMs: number | undefined) => ({ compiled, total: 3000, current: "k8s.io/apiserver/pkg/endpoints/handlers", elapsedMs: 60_000, remainingMs });

describe("the build's progress line", () => {
  it("says how many packages of how many, the share, the time left and the package", () => {
    assert.equal(formatBuildProgress(at(750, 180_000), 200), "kubeloop: building 750/3000 packages (25%), about 3 min left · k8s.io/apiserver/pkg/endpoints/handlers");
    assert.equal(formatBuildProgress(at(12, undefined), 200), "kubeloop: building 12/3000 packages (0%) · k8s.io/apiserver/pkg/endpoints/handlers");
    assert.equal(formatBuildProgress(at(2990, 20_000), 200), "kubeloop: building 2990/3000 packages (99%), about 20 s left · k8s.io/apiserver/pkg/endpoints/handlers");
    assert.match(formatBuildProgress(at(3000, 0), 200), /3000\/3000 packages \(100%\), linking/);
    const cut = formatBuildProgress(at(750, 180_000), 60);
    assert.equal(cut.length, 60);
    assert.ok(cut.endsWith("…"));
  });

  it("is redrawn in place on a terminal, cleared before other output, and not drawn elsewhere", () => {
    const written: string[] = [];
    const tty = { isTTY: true, columns: 100, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
    const line = progressLine(tty);
    assert.ok(line);
    line.update(at(1, undefined));
    line.update(at(2, undefined)); // within 100 ms: skipped
    line.update(at(3000, 0)); // the last one: always drawn
    line.clear();
    assert.equal(written.length, 3);
    assert.ok(written[0]?.startsWith("\r\u001b[K") && written[0].includes("1/3000"));
    assert.ok(written[1]?.includes("3000/3000"));
    assert.equal(written[2], "\r\u001b[K");
    assert.equal(progressLine({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream), undefined);
  });
});

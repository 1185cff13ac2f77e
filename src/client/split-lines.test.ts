// The watch body's line splitter: lines split across chunks, multi-byte characters split across
// chunks, many lines in one chunk, empty lines, and a chunk that is not a Buffer.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { splitLines } from "./resource.js";

function split(chunks: Uint8Array[]): { lines: string[]; rest: string } {
  const partial: Buffer[] = [];
  const lines: string[] = [];
  for (const chunk of chunks) splitLines(chunk, partial, (line) => lines.push(line));
  return { lines, rest: Buffer.concat(partial).toString("utf8") };
}

/** `text` as UTF-8, cut into chunks at every byte offset in `cuts`. */
function cut(text: string, cuts: number[]): Buffer[] {
  const all = Buffer.from(text, "utf8");
  const at = [0, ...cuts, all.length];
  return at.slice(1).map((end, i) => all.subarray(at[i], end));
}

describe("splitLines", () => {
  it("keeps lines whole across any cut, multi-byte characters included", () => {
    const text = `{"a":"é"}\n{"b":"🙂 אב"}\n\n{"c":"${"x".repeat(3000)}"}\n`;
    const want = [`{"a":"é"}`, `{"b":"🙂 אב"}`, "", `{"c":"${"x".repeat(3000)}"}`];
    const bytes = Buffer.byteLength(text);
    // Every single cut point (inside "é" and the emoji too), and cuts into 1-byte chunks.
    for (let i = 1; i < bytes; i++) assert.deepEqual(split(cut(text, [i])), { lines: want, rest: "" }, `cut at byte ${i}`);
    assert.deepEqual(split(cut(text, Array.from({ length: bytes - 1 }, (_, i) => i + 1))), { lines: want, rest: "" });
  });

  it("leaves an unfinished line for the next chunk; takes plain Uint8Arrays", () => {
    const partial: Buffer[] = [];
    const lines: string[] = [];
    splitLines(new TextEncoder().encode('{"a":1}\n{"b"'), partial, (l) => lines.push(l));
    assert.deepEqual(lines, ['{"a":1}']);
    splitLines(new TextEncoder().encode(":2}\n"), partial, (l) => lines.push(l));
    assert.deepEqual(lines, ['{"a":1}', '{"b":2}']);
    assert.equal(partial.length, 0);
  });
});

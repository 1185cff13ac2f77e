// Lock files holding the owner's pid, for the build cache and for data dirs.
//
// The lock appears atomically with its content: the pid is written to a temporary file which
// is then hard-linked to the lock path (link fails if the path exists). With open(O_EXCL) and a
// write after it, a competitor could read the lock while still empty, take it for stale, and
// break it: two builds of the same binary were seen that way.
import { promises as fs } from "node:fs";
import { isAlive } from "./supervisor.js";

/** The lock is ours (`acquired`), or held by a live process (`owner`). A dead owner's lock is taken over. */
export type LockResult = { acquired: true } | { acquired: false; owner: number };

export async function tryPidLock(path: string): Promise<LockResult> {
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  await fs.writeFile(temporary, String(process.pid));
  try {
    for (;;) {
      try {
        await fs.link(temporary, path);
        return { acquired: true };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const owner = Number(await fs.readFile(path, "utf8").catch(() => ""));
      if (owner && isAlive(owner)) return { acquired: false, owner };
      // Left by a process that died (or removed meanwhile): remove and try again.
      await fs.rm(path, { force: true });
    }
  } finally {
    await fs.rm(temporary, { force: true });
  }
}

/** Removes the lock if it is ours. */
export async function releasePidLock(path: string): Promise<void> {
  const owner = Number(await fs.readFile(path, "utf8").catch(() => ""));
  if (owner === process.pid) await fs.rm(path, { force: true });
}

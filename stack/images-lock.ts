import fs from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

const POLL_INTERVAL_MS = 500;
/** A lock file without a pid this old was left by a writer that died between create and write. */
const EMPTY_LOCK_STALE_MS = 10_000;

/**
 * Runs fn while holding a lock file, so test workers in several processes build each image once.
 * A lock whose owner pid no longer runs is taken over.
 */
export async function withFileLock<T>(lockPath: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  await acquire(lockPath, timeoutMs);
  try {
    return await fn();
  } finally {
    await release(lockPath);
  }
}

async function acquire(lockPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let owner = "";

  while (Date.now() < deadline) {
    try {
      await fs.writeFile(lockPath, String(process.pid), { flag: "wx" });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }

    owner = await fs.readFile(lockPath, "utf8").catch(() => "");
    if (await isStale(lockPath, owner)) {
      await fs.rm(lockPath, { force: true });
      continue;
    }
    await sleep(POLL_INTERVAL_MS);
  }

  throw new Error(`timed out after ${timeoutMs} ms waiting for lock ${lockPath} held by pid ${owner || "unknown"}`);
}

async function isStale(lockPath: string, owner: string): Promise<boolean> {
  const pid = Number(owner);
  if (owner !== "" && Number.isInteger(pid)) return !isRunning(pid);

  const stat = await fs.stat(lockPath).catch(() => null);
  return stat !== null && Date.now() - stat.mtimeMs > EMPTY_LOCK_STALE_MS;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the lock only while this process still owns it. */
async function release(lockPath: string): Promise<void> {
  const owner = await fs.readFile(lockPath, "utf8").catch(() => "");
  if (owner === String(process.pid)) await fs.rm(lockPath, { force: true });
}

import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import fs from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pingEngine } from "./engine-client.ts";
import { REPO_ROOT } from "./paths.ts";

/**
 * Podman settings for every engine this harness starts: the runc runtime and ulimits that fit the
 * machine. The `podman` CLI needs the same CONTAINERS_CONF to run containers of these images.
 */
export const CONTAINERS_CONF = path.join(REPO_ROOT, "stack", "containers.conf");

const SERVICE_START_TIMEOUT_MS = 30_000;
const SERVICE_STOP_TIMEOUT_MS = 5_000;
const POLL_INTERVAL_MS = 100;
const STDERR_TAIL_LINES = 20;

export interface PodmanService {
  dockerHost: string;
  stop(): Promise<void>;
}

/**
 * Starts `podman system service` on a socket in runtimeDir and waits until `/_ping` succeeds.
 * Run as root, the service uses the system storage, so the API and the CLI list the same images.
 */
export async function startPodmanService(
  podmanPath: string,
  runtimeDir: string,
  log: (line: string) => void,
): Promise<PodmanService> {
  const socketPath = path.join(runtimeDir, "podman.sock");
  const dockerHost = `unix://${socketPath}`;
  await fs.rm(socketPath, { force: true });

  const child = spawn(podmanPath, ["system", "service", "--time=0", dockerHost], {
    env: { ...process.env, CONTAINERS_CONF },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const stderrTail = collectStderr(child, log);
  // NOTE: a parent killed by a signal skips "exit" listeners, so the service then outlives it.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  const stop = async () => {
    process.removeListener("exit", killOnExit);
    await stopChild(child, log);
  };

  await waitForService(child, dockerHost, stderrTail).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  log(`podman service (pid ${child.pid}) answers at ${dockerHost}`);
  return { dockerHost, stop };
}

/**
 * Keeps the service's last stderr lines for error messages and logs its warnings and errors.
 * Other lines, such as the progress of every image import, stay out of the log.
 */
function collectStderr(child: ChildProcess, log: (line: string) => void): string[] {
  const tail: string[] = [];
  if (child.stderr === null) return tail;

  createInterface({ input: child.stderr }).on("line", (line) => {
    if (/level=(warning|error|fatal|panic)/.test(line)) log(`podman: ${line}`);
    tail.push(line);
    if (tail.length > STDERR_TAIL_LINES) tail.shift();
  });
  return tail;
}

async function waitForService(child: ChildProcess, dockerHost: string, stderrTail: string[]): Promise<void> {
  let failure: Error | undefined;
  child.once("error", (error) => (failure = error));

  const deadline = Date.now() + SERVICE_START_TIMEOUT_MS;
  let lastPingError: string | null = "not tried";

  while (Date.now() < deadline) {
    if (failure !== undefined) throw new Error(`could not run podman: ${failure.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      const exitStatus = child.exitCode !== null ? `code ${child.exitCode}` : `signal ${child.signalCode}`;
      throw new Error(
        `podman system service exited with ${exitStatus} before /_ping succeeded ` +
          `(stderr: ${stderrTail.join(" | ")}); run \`CONTAINERS_CONF=${CONTAINERS_CONF} podman info\` to check podman`,
      );
    }

    lastPingError = await pingEngine(dockerHost);
    if (lastPingError === null) return;
    await sleep(POLL_INTERVAL_MS);
  }

  throw new Error(
    `podman system service did not respond to /_ping at ${dockerHost} within ${SERVICE_START_TIMEOUT_MS} ms ` +
      `(last error: ${lastPingError}; stderr: ${stderrTail.join(" | ")})`,
  );
}

/** Sends SIGTERM, then SIGKILL if the service has not exited in time. */
async function stopChild(child: ChildProcess, log: (line: string) => void): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;

  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const timer = new AbortController();
  const timeout = sleep(SERVICE_STOP_TIMEOUT_MS, true, { signal: timer.signal }).catch(() => false);
  child.kill("SIGTERM");
  const timedOut = await Promise.race([exited.then(() => false), timeout]);
  timer.abort();
  if (!timedOut) return;

  log(`podman service (pid ${child.pid}) ignored SIGTERM for ${SERVICE_STOP_TIMEOUT_MS} ms, sending SIGKILL`);
  child.kill("SIGKILL");
  await exited;
}

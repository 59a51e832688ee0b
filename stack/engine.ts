import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { detectEngineKind, pingEngine } from "./engine-client.ts";
import { startPodmanService } from "./engine-podman.ts";

export { createDockerClient } from "./engine-client.ts";
export { CONTAINERS_CONF } from "./engine-podman.ts";

/** A Docker Engine API that tests and the local stack can use, or the reason there is none. */
export interface EngineHandle {
  /** Engine address in `DOCKER_HOST` form (`unix:///…` or `tcp://…`), null when none is available. */
  dockerHost: string | null;
  kind: "docker" | "podman" | "none";
  /** Reason no engine is available; set only when kind is "none". */
  reason?: string;
  /** Stops the Podman service if startEngine started it; does nothing for an engine found running. */
  stop(): Promise<void>;
}

export interface StartEngineOptions {
  /** Folder for the Podman service socket; a fresh folder under the OS temp dir by default. */
  runtimeDir?: string;
  log?: (line: string) => void;
}

const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";

/**
 * Finds or starts a Docker Engine API, in this order: DOCKER_HOST when set, the default Docker
 * socket, then a Podman service started here. Returns kind "none" with a reason when none works.
 */
export async function startEngine(options: StartEngineOptions = {}): Promise<EngineHandle> {
  const log = options.log ?? (() => {});

  const fromEnvironment = process.env.DOCKER_HOST;
  if (fromEnvironment !== undefined && fromEnvironment !== "") {
    return useRunningEngine(fromEnvironment, "DOCKER_HOST");
  }

  const defaultSocket = `unix://${DEFAULT_DOCKER_SOCKET}`;
  if ((await pingEngine(defaultSocket)) === null) {
    return useRunningEngine(defaultSocket, DEFAULT_DOCKER_SOCKET);
  }

  const podmanPath = await findExecutable("podman");
  if (podmanPath === null) {
    return noEngine(`no DOCKER_HOST, no engine at ${DEFAULT_DOCKER_SOCKET} and podman is not installed`);
  }
  return startPodman(podmanPath, options.runtimeDir, log);
}

/** Uses an engine that something else runs; its stop() leaves that engine alone. */
async function useRunningEngine(dockerHost: string, source: string): Promise<EngineHandle> {
  const pingError = await pingEngine(dockerHost);
  if (pingError !== null) {
    return noEngine(`${source} is set to ${dockerHost}, but /_ping failed there: ${pingError}`);
  }

  const kind = await detectEngineKind(dockerHost);
  return { dockerHost, kind, stop: async () => {} };
}

async function startPodman(
  podmanPath: string,
  runtimeDir: string | undefined,
  log: (line: string) => void,
): Promise<EngineHandle> {
  const ownsRuntimeDir = runtimeDir === undefined;
  const dir = runtimeDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), "berth-engine-")));
  await fs.mkdir(dir, { recursive: true });
  const removeDir = async () => {
    if (ownsRuntimeDir) await fs.rm(dir, { recursive: true, force: true });
  };

  try {
    const service = await startPodmanService(podmanPath, dir, log);
    const stop = async () => {
      await service.stop();
      await removeDir();
    };
    return { dockerHost: service.dockerHost, kind: "podman", stop };
  } catch (error) {
    await removeDir();
    return noEngine(error instanceof Error ? error.message : String(error));
  }
}

function noEngine(reason: string): EngineHandle {
  return { dockerHost: null, kind: "none", reason, stop: async () => {} };
}

/** Returns the absolute path of an executable found on PATH, or null. */
async function findExecutable(name: string): Promise<string | null> {
  const directories = (process.env.PATH ?? "").split(path.delimiter).filter((entry) => entry !== "");
  for (const directory of directories) {
    const candidate = path.join(directory, name);
    try {
      await fs.access(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory; try the next one.
    }
  }
  return null;
}

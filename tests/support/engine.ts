import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type Docker from "dockerode";
import { describe, inject, it } from "vitest";
import { createDockerClient } from "../../stack/engine-client.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** Engine address in DOCKER_HOST form, or null when the global setup found no engine. */
    dockerHost: string | null;
    /** Why there is no engine; null when there is one. */
    engineSkipReason: string | null;
  }
}

export interface TestEngine {
  readonly dockerHost: string;
  readonly docker: Docker;
}

/** Label key that tests put on every container they create, with a value unique to the suite. */
export const TEST_RUN_LABEL_KEY = "berth.test.run";

let skipWarningShown = false;

/**
 * Declares a suite that needs a container engine. Without one it is skipped with a warning, or
 * it fails with the reason when BERTH_REQUIRE_ENGINE=1. Set that wherever an engine must exist,
 * such as in CI, so a missing engine fails the run instead of passing with skipped tests.
 */
export function describeWithEngine(name: string, fn: (engine: TestEngine) => void): void {
  const dockerHost = inject("dockerHost");
  if (dockerHost !== null && dockerHost !== undefined) {
    const engine: TestEngine = { dockerHost, docker: createDockerClient(dockerHost) };
    describe(name, () => fn(engine));
    return;
  }

  const reason = inject("engineSkipReason") ?? "the global setup provided no container engine";
  if (process.env.BERTH_REQUIRE_ENGINE === "1") {
    describe(name, () => {
      it("has a container engine", () => {
        throw new Error(`BERTH_REQUIRE_ENGINE=1 but no container engine is available: ${reason}`);
      });
    });
    return;
  }

  if (!skipWarningShown) {
    skipWarningShown = true;
    console.warn(`Skipping container engine tests: ${reason}`);
  }
  describe.skip(name, () => fn(unavailableEngine(reason)));
}

/** Stands in for the engine while a skipped suite registers its tests, which never run. */
function unavailableEngine(reason: string): TestEngine {
  const fail = (): never => {
    throw new Error(`no container engine is available: ${reason}`);
  };
  return {
    get dockerHost() {
      return fail();
    },
    get docker() {
      return fail();
    },
  };
}

export interface TestRunLabel {
  /** Labels to put on a container, e.g. `Labels: label.labels`. */
  labels: Record<string, string>;
  /** The `key=value` label filter that selects exactly these containers. */
  selector: string;
}

/** Creates a label unique to one suite, so cleanup never touches containers it did not create. */
export function createTestRunLabel(): TestRunLabel {
  const value = randomUUID();
  return { labels: { [TEST_RUN_LABEL_KEY]: value }, selector: `${TEST_RUN_LABEL_KEY}=${value}` };
}

/** Force-removes every container, running or not, that carries the label; returns how many. */
export async function removeLabeledContainers(docker: Docker, selector: string): Promise<number> {
  if (!/^[^=\s]+=\S+$/.test(selector)) {
    throw new Error(`invalid label selector ${JSON.stringify(selector)}: expected key=value`);
  }

  const containers = await docker.listContainers({ all: true, filters: { label: [selector] } });
  for (const container of containers) {
    try {
      await docker.getContainer(container.Id).remove({ force: true, v: true });
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
    }
  }
  return containers.length;
}

/**
 * Polls a URL on a container's published port until `accept` approves a response. On timeout
 * the error carries the container's state and its last log lines.
 */
export async function waitForContainerHttp(
  container: Docker.Container,
  url: string,
  options: { timeoutMs?: number; accept?: (response: Response) => boolean } = {},
): Promise<Response> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const accept = options.accept ?? ((response: Response) => response.ok);
  const deadline = Date.now() + timeoutMs;
  let lastOutcome = "no request sent";

  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (accept(response)) return response;
      lastOutcome = `HTTP ${response.status}`;
      await response.body?.cancel();
    } catch (error) {
      lastOutcome = describeFetchError(error);
    }
    await sleep(200);
  }

  const diagnosis = await describeContainer(container);
  throw new Error(`${url} returned no accepted response within ${timeoutMs} ms (last: ${lastOutcome}); ${diagnosis}`);
}

/** Polls a container until its Docker state is the given status and returns the last inspect result. */
export async function waitForContainerStatus(
  container: Docker.Container,
  status: string,
  timeoutMs = 30_000,
): Promise<Docker.ContainerInspectInfo> {
  const deadline = Date.now() + timeoutMs;
  let info = await container.inspect();

  while (info.State.Status !== status && Date.now() < deadline) {
    await sleep(200);
    info = await container.inspect();
  }

  if (info.State.Status !== status) {
    const diagnosis = await describeContainer(container);
    throw new Error(`container did not reach status ${status} within ${timeoutMs} ms; ${diagnosis}`);
  }
  return info;
}

function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}

/** Summarizes a container's state and its last log lines for a failure message. */
export async function describeContainer(container: Docker.Container): Promise<string> {
  try {
    const { State } = await container.inspect();
    const logs = await containerLogs(container, 20);
    return `container ${container.id.slice(0, 12)} is ${State.Status} (exit code ${State.ExitCode}); last log lines:\n${logs}`;
  } catch (error) {
    return `could not inspect container ${container.id}: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** Returns the last lines of a container's stdout and stderr as text. */
export async function containerLogs(container: Docker.Container, tail = 100): Promise<string> {
  const raw = await container.logs({ stdout: true, stderr: true, tail, follow: false });
  return demultiplex(raw);
}

/**
 * Joins the payloads of a multiplexed log stream. Without a TTY the engine prefixes each chunk
 * with 8 bytes: the stream type, three zero bytes and the payload length as a big-endian uint32.
 * A container with a TTY sends plain text, which is returned as it is.
 */
function demultiplex(raw: Buffer): string {
  const multiplexed = raw.length >= 8 && raw[0]! <= 2 && raw[1] === 0 && raw[2] === 0 && raw[3] === 0;
  if (!multiplexed) return raw.toString("utf8");

  const chunks: Buffer[] = [];
  let offset = 0;

  while (offset + 8 <= raw.length) {
    const size = raw.readUInt32BE(offset + 4);
    chunks.push(raw.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(chunks).toString("utf8");
}

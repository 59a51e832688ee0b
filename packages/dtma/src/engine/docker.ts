import readline from "node:readline";
import type { Readable } from "node:stream";
import Docker from "dockerode";
import type { LogLine } from "@berth/shared";
import type { DockerEndpoint } from "../config.ts";
import type { ContainerDetails, ContainerSpec, ContainerSummary, Engine, EngineEvent } from "./engine.ts";
import { EngineError } from "./engine.ts";
import { classifyEngineError } from "./errors.ts";
import { demultiplexLogs, splitRawLogs } from "./logs.ts";

/** An `Engine` over the Docker Engine API, which Docker and Podman's API service both serve. */
export class DockerEngine implements Engine {
  private readonly api: Docker;
  // Event streams stay open for hours without traffic, so they use a client without the
  // per-request inactivity timeout.
  private readonly streams: Docker;

  constructor(endpoint: DockerEndpoint, timeoutMs: number) {
    this.api = new Docker({ ...modemOptions(endpoint), timeout: timeoutMs });
    this.streams = new Docker(modemOptions(endpoint));
  }

  async ping(): Promise<void> {
    await call(() => this.api.ping());
  }

  async version(): Promise<string> {
    const version = await call(() => this.api.version());
    return version.Version;
  }

  async listContainers(labels: Record<string, string>): Promise<ContainerSummary[]> {
    const containers = await call(() => this.api.listContainers({ all: true, filters: { label: labelFilter(labels) } }));
    return containers.map((container) => ({
      id: container.Id,
      name: (container.Names[0] ?? "").replace(/^\//, ""),
      labels: container.Labels ?? {},
      state: container.State,
    }));
  }

  async inspect(idOrName: string): Promise<ContainerDetails | null> {
    try {
      const info = await call(() => this.api.getContainer(idOrName).inspect());
      return toDetails(info);
    } catch (error) {
      if (error instanceof EngineError && error.kind === "not_found") {
        return null;
      }
      throw error;
    }
  }

  async imageExists(reference: string): Promise<boolean> {
    try {
      await call(() => this.api.getImage(reference).inspect());
      return true;
    } catch (error) {
      if (error instanceof EngineError && (error.kind === "not_found" || error.kind === "image_not_found")) {
        return false;
      }
      throw error;
    }
  }

  async create(spec: ContainerSpec): Promise<string> {
    const container = await call(() => this.api.createContainer(createOptions(spec)));
    return container.id;
  }

  async start(id: string): Promise<void> {
    await ignoreNotModified(() => this.api.getContainer(id).start());
  }

  async stop(id: string, timeoutSeconds: number): Promise<void> {
    await ignoreNotModified(() => this.api.getContainer(id).stop({ t: timeoutSeconds }));
  }

  async restart(id: string, timeoutSeconds: number): Promise<void> {
    await call(() => this.api.getContainer(id).restart({ t: timeoutSeconds }));
  }

  async remove(id: string): Promise<void> {
    try {
      await call(() => this.api.getContainer(id).remove({ force: true }));
    } catch (error) {
      if (!(error instanceof EngineError && error.kind === "not_found")) {
        throw error;
      }
    }
  }

  async logs(id: string, tail: number): Promise<LogLine[]> {
    const container = this.api.getContainer(id);
    const info = await call(() => container.inspect());
    const buffer = await call(() =>
      container.logs({ follow: false, stdout: true, stderr: true, tail, timestamps: true }),
    );

    // A container with a TTY has one raw stream; all others frame each chunk with a header.
    return info.Config.Tty ? splitRawLogs(buffer) : demultiplexLogs(buffer);
  }

  async events(labels: Record<string, string>, sinceSeconds: number, signal: AbortSignal): Promise<AsyncIterable<EngineEvent>> {
    const stream = (await call(() =>
      this.streams.getEvents({ since: sinceSeconds, filters: { type: ["container"], label: labelFilter(labels) } }),
    )) as Readable;
    return readEvents(stream, signal);
  }
}

async function* readEvents(stream: Readable, signal: AbortSignal): AsyncIterable<EngineEvent> {
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  // Destroying the socket alone does not end readline's iterator, because readline waits for
  // an `end` event that a destroyed stream never emits. Closing the interface ends it.
  const abort = () => {
    lines.close();
    stream.destroy();
  };
  stream.once("close", () => lines.close());
  if (signal.aborted) {
    abort();
  }
  signal.addEventListener("abort", abort, { once: true });

  try {
    for await (const line of lines) {
      const event = parseEvent(line);
      if (event !== null) {
        yield event;
      }
    }
  } finally {
    signal.removeEventListener("abort", abort);
    abort();
  }
}

function modemOptions(endpoint: DockerEndpoint): Docker.DockerOptions {
  if (endpoint.kind === "socket") {
    return { socketPath: endpoint.socketPath };
  }
  return { protocol: endpoint.protocol, host: endpoint.host, port: endpoint.port };
}

function labelFilter(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([key, value]) => `${key}=${value}`);
}

async function call<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw classifyEngineError(error);
  }
}

/** Runs a start or stop call; the engine's 304 means the container already is in that state. */
async function ignoreNotModified(operation: () => Promise<unknown>): Promise<void> {
  try {
    await operation();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 304) {
      return;
    }
    throw classifyEngineError(error);
  }
}

function createOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  const portKey = `${spec.containerPort}/tcp`;
  return {
    name: spec.name,
    Image: spec.image,
    ...(spec.command === null ? {} : { Cmd: spec.command }),
    Env: Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
    Labels: spec.labels,
    ExposedPorts: { [portKey]: {} },
    HostConfig: {
      PortBindings: { [portKey]: [{ HostIp: spec.publishIp, HostPort: String(spec.hostPort) }] },
      // `unless-stopped` restarts crashed containers and containers of a restarted engine, but
      // not one the agent stopped on request.
      RestartPolicy: { Name: "unless-stopped" },
      // An init process forwards SIGTERM to servers that run as PID 1 without a signal
      // handler, so a stop takes milliseconds instead of the whole stop timeout.
      Init: true,
      ...(spec.memoryBytes === null ? {} : { Memory: spec.memoryBytes }),
      ...(spec.nanoCpus === null ? {} : { NanoCpus: spec.nanoCpus }),
    },
  };
}

function toDetails(info: Docker.ContainerInspectInfo): ContainerDetails {
  const state = info.State;
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ""),
    image: info.Config.Image,
    labels: info.Config.Labels ?? {},
    state: state.Status,
    running: state.Running,
    exitCode: state.ExitCode,
    oomKilled: state.OOMKilled,
    restartCount: info.RestartCount ?? 0,
    startedAt: normalizeTimestamp(state.StartedAt),
    finishedAt: normalizeTimestamp(state.FinishedAt),
    health: state.Health?.Status ? state.Health.Status : null,
    hostPort: firstHostPort(info.HostConfig.PortBindings),
    tty: info.Config.Tty,
  };
}

function firstHostPort(bindings: unknown): number | null {
  const entries = Object.values((bindings ?? {}) as Record<string, Array<{ HostPort?: string }> | null>);
  for (const list of entries) {
    const port = Number(list?.[0]?.HostPort);
    if (Number.isInteger(port) && port > 0 && port <= 65535) {
      return port;
    }
  }
  return null;
}

/**
 * Converts an engine timestamp to ISO 8601 with milliseconds. The engines report nanoseconds,
 * which `Date` does not parse, and `0001-01-01T00:00:00Z` for "never".
 */
export function normalizeTimestamp(value: string | undefined | null): string | null {
  if (!value || value.startsWith("0001-01-01")) {
    return null;
  }
  const trimmed = value.replace(/(\.\d{3})\d+/, "$1");
  const date = new Date(trimmed);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

interface RawEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  time?: number;
  timeNano?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

function parseEvent(line: string): EngineEvent | null {
  let raw: RawEvent;
  try {
    raw = JSON.parse(line) as RawEvent;
  } catch {
    return null;
  }

  const containerId = raw.Actor?.ID ?? raw.id;
  const action = raw.Action ?? raw.status;
  if (raw.Type !== "container" || !containerId || !action) {
    return null;
  }

  const attributes = raw.Actor?.Attributes ?? {};
  const exitCode = Number(attributes.exitCode);
  const millis = raw.timeNano ? Math.floor(raw.timeNano / 1e6) : (raw.time ?? 0) * 1000;
  return {
    action,
    containerId,
    labels: attributes,
    time: new Date(millis || Date.now()).toISOString(),
    exitCode: attributes.exitCode !== undefined && Number.isInteger(exitCode) ? exitCode : null,
  };
}

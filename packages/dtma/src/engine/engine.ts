import type { LogLine } from "@berth/shared";

/**
 * The narrow view of the container engine that the agent needs. The Docker implementation is
 * `DockerEngine`; tests of the agent's logic use an in-memory fake of this interface.
 */
export interface Engine {
  /** Resolves when the engine responds, and rejects with `EngineError("unavailable")` otherwise. */
  ping(): Promise<void>;
  /** Returns the engine's version string, such as `27.3.1` or `4.3.1`. */
  version(): Promise<string>;
  /** Lists containers, running or not, that carry every given label. */
  listContainers(labels: Record<string, string>): Promise<ContainerSummary[]>;
  /** Returns a container by id or name, or null when it does not exist. */
  inspect(idOrName: string): Promise<ContainerDetails | null>;
  imageExists(reference: string): Promise<boolean>;
  /** Creates a container and returns its id. */
  create(spec: ContainerSpec): Promise<string>;
  /** Starts a container; starting a running one succeeds. */
  start(id: string): Promise<void>;
  /** Stops a container, killing it after `timeoutSeconds`; stopping a stopped one succeeds. */
  stop(id: string, timeoutSeconds: number): Promise<void>;
  restart(id: string, timeoutSeconds: number): Promise<void>;
  /** Removes a container, running or not; removing a missing one succeeds. */
  remove(id: string): Promise<void>;
  /** Returns the last `tail` lines of stdout and stderr, oldest first. */
  logs(id: string, tail: number): Promise<LogLine[]>;
  /**
   * Opens a stream of events of containers that carry every given label, starting with the past
   * events since `sinceSeconds` (Unix time on the engine's clock) and then following new ones.
   * The promise settles once the stream is open, and the stream ends when `signal` aborts or the
   * engine closes it.
   */
  events(labels: Record<string, string>, sinceSeconds: number, signal: AbortSignal): Promise<AsyncIterable<EngineEvent>>;
}

export interface ContainerSummary {
  id: string;
  name: string;
  labels: Record<string, string>;
  state: string;
}

export interface ContainerDetails {
  id: string;
  /** The name without Docker's leading slash. */
  name: string;
  image: string;
  labels: Record<string, string>;
  state: string;
  running: boolean;
  exitCode: number;
  oomKilled: boolean;
  restartCount: number;
  /** ISO timestamps, null while the container has never started or finished. */
  startedAt: string | null;
  finishedAt: string | null;
  /** The healthcheck status, null for a container without a healthcheck. */
  health: string | null;
  /** The host port of the first published container port, null when nothing is published. */
  hostPort: number | null;
  tty: boolean;
}

export interface ContainerSpec {
  name: string;
  image: string;
  command: string[] | null;
  env: Record<string, string>;
  labels: Record<string, string>;
  containerPort: number;
  hostPort: number;
  publishIp: string;
  memoryBytes: number | null;
  nanoCpus: number | null;
}

export interface EngineEvent {
  action: string;
  containerId: string;
  labels: Record<string, string>;
  /** ISO timestamp of the event. */
  time: string;
  exitCode: number | null;
}

export type EngineErrorKind =
  | "unavailable"
  | "not_found"
  | "name_conflict"
  | "port_in_use"
  | "image_not_found"
  | "failed";

/** A failed engine call, classified so the HTTP layer can pick a stable error code. */
export class EngineError extends Error {
  constructor(
    readonly kind: EngineErrorKind,
    message: string,
    readonly statusCode: number | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "EngineError";
  }
}

import net from "node:net";
import { z } from "zod";
import { DTMA_DEFAULT_PORT, ResourceId } from "@berth/shared";

/** Address of the engine's API: a unix socket path or an HTTP host and port. */
export type DockerEndpoint =
  | { kind: "socket"; socketPath: string }
  | { kind: "tcp"; protocol: "http" | "https"; host: string; port: number };

export interface Config {
  token: string;
  port: number;
  host: string;
  dockerHost: string;
  docker: DockerEndpoint;
  publishIp: string;
  controlPlaneUrl: string | null;
  toolboxId: string | null;
  heartbeatIntervalMs: number;
  heartbeatDebounceMs: number;
  heartbeatBackoffMinMs: number;
  heartbeatBackoffMaxMs: number;
  heartbeatTimeoutMs: number;
  engineTimeoutMs: number;
  stopTimeoutSeconds: number;
  shutdownTimeoutMs: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
}

export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

/** Raised when the environment does not describe a usable agent; the message lists every problem. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid agent configuration:\n${problems.map((problem) => `  ${problem}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

// An empty variable counts as unset, because service managers and compose files often pass
// `NAME=` for "no value".
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === "" ? undefined : value), schema.optional());

const integerSetting = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const Environment = z.object({
  DTMA_TOKEN: z
    .string({ error: "is required: set it to the agent token the control plane issued for this toolbox" })
    .min(16, "must be at least 16 characters: set it to the agent token the control plane issued"),
  DTMA_PORT: optional(integerSetting(0, 65535)),
  DTMA_HOST: optional(z.string()),
  DOCKER_HOST: optional(z.string()),
  DTMA_PUBLISH_IP: optional(z.string().refine((value) => net.isIP(value) !== 0, "must be an IPv4 or IPv6 address")),
  DTMA_CONTROL_PLANE_URL: optional(z.url({ protocol: /^https?$/, error: "must be an http or https URL" })),
  DTMA_TOOLBOX_ID: optional(ResourceId),
  DTMA_HEARTBEAT_INTERVAL_MS: optional(integerSetting(100, 86_400_000)),
  DTMA_HEARTBEAT_DEBOUNCE_MS: optional(integerSetting(0, 60_000)),
  DTMA_HEARTBEAT_BACKOFF_MIN_MS: optional(integerSetting(10, 3_600_000)),
  DTMA_HEARTBEAT_BACKOFF_MAX_MS: optional(integerSetting(10, 3_600_000)),
  DTMA_HEARTBEAT_TIMEOUT_MS: optional(integerSetting(100, 600_000)),
  DTMA_ENGINE_TIMEOUT_MS: optional(integerSetting(1_000, 3_600_000)),
  DTMA_STOP_TIMEOUT_SECONDS: optional(integerSetting(0, 3_600)),
  DTMA_SHUTDOWN_TIMEOUT_MS: optional(integerSetting(0, 600_000)),
  DTMA_LOG_LEVEL: optional(z.enum(["fatal", "error", "warn", "info", "debug", "trace"])),
});

/**
 * Parses the agent's settings from environment variables. Throws a `ConfigError` naming each
 * invalid or missing variable.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = Environment.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`));
  }
  const settings = parsed.data;

  const dockerHost = settings.DOCKER_HOST ?? DEFAULT_DOCKER_HOST;
  const problems: string[] = [];
  const docker = parseDockerHost(dockerHost, problems);
  checkHeartbeatSettings(settings, problems);
  if (problems.length > 0 || docker === null) {
    throw new ConfigError(problems);
  }

  return {
    token: settings.DTMA_TOKEN,
    port: settings.DTMA_PORT ?? DTMA_DEFAULT_PORT,
    host: settings.DTMA_HOST ?? "127.0.0.1",
    dockerHost,
    docker,
    publishIp: settings.DTMA_PUBLISH_IP ?? "127.0.0.1",
    controlPlaneUrl: settings.DTMA_CONTROL_PLANE_URL?.replace(/\/+$/, "") ?? null,
    toolboxId: settings.DTMA_TOOLBOX_ID?.toLowerCase() ?? null,
    heartbeatIntervalMs: settings.DTMA_HEARTBEAT_INTERVAL_MS ?? 30_000,
    heartbeatDebounceMs: settings.DTMA_HEARTBEAT_DEBOUNCE_MS ?? 1_000,
    heartbeatBackoffMinMs: settings.DTMA_HEARTBEAT_BACKOFF_MIN_MS ?? 1_000,
    heartbeatBackoffMaxMs: settings.DTMA_HEARTBEAT_BACKOFF_MAX_MS ?? 60_000,
    heartbeatTimeoutMs: settings.DTMA_HEARTBEAT_TIMEOUT_MS ?? 10_000,
    engineTimeoutMs: settings.DTMA_ENGINE_TIMEOUT_MS ?? 120_000,
    stopTimeoutSeconds: settings.DTMA_STOP_TIMEOUT_SECONDS ?? 10,
    shutdownTimeoutMs: settings.DTMA_SHUTDOWN_TIMEOUT_MS ?? 30_000,
    logLevel: settings.DTMA_LOG_LEVEL ?? "info",
  };
}

type Settings = z.infer<typeof Environment>;

function checkHeartbeatSettings(settings: Settings, problems: string[]): void {
  if (settings.DTMA_CONTROL_PLANE_URL !== undefined && settings.DTMA_TOOLBOX_ID === undefined) {
    problems.push("DTMA_TOOLBOX_ID: is required when DTMA_CONTROL_PLANE_URL is set, because heartbeats name the toolbox");
  }

  const min = settings.DTMA_HEARTBEAT_BACKOFF_MIN_MS ?? 1_000;
  const max = settings.DTMA_HEARTBEAT_BACKOFF_MAX_MS ?? 60_000;
  if (min > max) {
    problems.push(`DTMA_HEARTBEAT_BACKOFF_MAX_MS: must be at least DTMA_HEARTBEAT_BACKOFF_MIN_MS (${min})`);
  }
}

/**
 * Parses `DOCKER_HOST` in the forms the Docker CLI accepts for plain connections:
 * `unix:///path`, and `tcp://`, `http://` or `https://` with a host and an optional port
 * (2375, or 2376 for https, when left out).
 */
export function parseDockerHost(value: string, problems: string[]): DockerEndpoint | null {
  if (value.startsWith("unix://")) {
    const socketPath = value.slice("unix://".length);
    if (!socketPath.startsWith("/")) {
      problems.push(`DOCKER_HOST: "${value}" must name an absolute socket path, as in unix:///var/run/docker.sock`);
      return null;
    }
    return { kind: "socket", socketPath };
  }

  const match = /^(tcp|http|https):\/\/(\[[^\]]+\]|[^:/\s]+)(?::(\d{1,5}))?\/?$/.exec(value);
  const protocol = match?.[1] === "https" ? "https" : "http";
  const defaultPort = protocol === "https" ? 2376 : 2375;
  const port = match?.[3] === undefined ? defaultPort : Number(match[3]);
  if (match === null || port < 1 || port > 65535) {
    problems.push(`DOCKER_HOST: "${value}" must be unix:///path/to.sock or tcp://host:port`);
    return null;
  }
  return { kind: "tcp", protocol, host: match[2]!.replace(/^\[|\]$/g, ""), port };
}

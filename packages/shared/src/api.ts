import { z } from "zod";
import { DTMA_LOGS_DEFAULT_TAIL, DTMA_LOGS_MAX_TAIL, EnvName, ImageReference, LogLine, PortNumber, ResourceId } from "./dtma.ts";
import { DesiredState, EventActor, InstanceStatus, ReasonCode, ToolboxStatus } from "./states.ts";

/**
 * Request and response bodies of the user API (`/functions/v1/toolboxes` and
 * `/functions/v1/instances`). The functions parse requests with these schemas and the
 * management UI and CLI parse responses with them. The rules match the database's check
 * constraints, so a request that passes here is not rejected there for its shape.
 */

/** A toolbox or instance name: a DNS label, so it is safe in container names and host names. */
export const DnsLabel = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "must be 1 to 63 lowercase letters, digits or hyphens, starting and ending with a letter or digit");

/**
 * The agent's base URL, such as `https://203.0.113.7:30000`: http or https with a host and an
 * optional port (the scheme's default when absent). Berth calls `/v1/...` on that host and port,
 * so the URL has no path other than `/`, and no user name, password, query or fragment. Which
 * addresses are allowed is the functions' setting, checked by them.
 */
export const AgentUrl = z
  .string()
  .max(2048, "must be at most 2048 characters")
  .superRefine((value, context) => {
    const problem = agentUrlProblem(value);
    if (problem !== null) context.addIssue({ code: "custom", message: problem });
  });

/** Returns what is wrong with an agent URL, worded as a predicate of the field, or null. */
function agentUrlProblem(value: string): string | null {
  if (!/^https?:\/\//.test(value)) return "must start with http:// or https://";
  // The URL parser drops tabs, line breaks and leading or trailing control characters, so
  // they are rejected here rather than silently removed.
  if (/[\s\x00-\x1f\x7f]/.test(value)) return "must not contain spaces or control characters";
  if (!/^https?:\/\/[^/?#\\]+\/?$/.test(value)) {
    return "must not have a path, query or fragment: Berth calls /v1/... on the agent's host and port, so give only scheme, host and port, such as https://203.0.113.7:30000";
  }

  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "must be a valid URL with a host and a port from 1 to 65535, such as https://203.0.113.7:30000";
  }
  if (url.username !== "" || url.password !== "" || value.includes("@")) return "must not contain a user name or password";
  if (url.port === "0") return "must have a port from 1 to 65535";
  return null;
}

/** An absolute URL path of the MCP endpoint inside the container, such as `/mcp`. */
export const McpPath = z
  .string()
  .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,255}$/, "must be an absolute URL path such as /mcp, without spaces, query or fragment");

const EnvValue = z.string().refine((value) => !value.includes("\u0000"), "must not contain NUL characters");

/** Environment variables as name to string value. */
export const EnvMap = z.record(EnvName, EnvValue);

const Timestamp = z.iso.datetime({ offset: true });

// Toolboxes -----------------------------------------------------------------------------------

/** Body of `POST /toolboxes`. */
export const ToolboxCreateRequest = z.strictObject({
  name: DnsLabel,
  agent_url: AgentUrl,
});
export type ToolboxCreateRequest = z.infer<typeof ToolboxCreateRequest>;

/** A toolbox as the API returns it. The agent token is never part of it. */
export const ToolboxResponse = z.object({
  id: ResourceId,
  name: z.string(),
  agent_url: z.string(),
  agent_port: PortNumber,
  port_range_start: PortNumber,
  port_range_end: PortNumber,
  status: ToolboxStatus,
  agent_version: z.string().nullable(),
  last_heartbeat_at: Timestamp.nullable(),
  last_failure: z.string().nullable(),
  token_version: z.int().min(1),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type ToolboxResponse = z.infer<typeof ToolboxResponse>;

/**
 * Response of `POST /toolboxes` and `POST /toolboxes/{id}/rotate-token`: the toolbox, its agent
 * token and a `docker run` line that installs the agent with it. The token is shown only here.
 */
export const ToolboxCreateResponse = z.object({
  toolbox: ToolboxResponse,
  agent_token: z.string(),
  install_command: z.string(),
});
export type ToolboxCreateResponse = z.infer<typeof ToolboxCreateResponse>;

/** Response of `POST /toolboxes/{id}/rotate-token`; the old token stops working. */
export const ToolboxRotateTokenResponse = ToolboxCreateResponse;
export type ToolboxRotateTokenResponse = z.infer<typeof ToolboxRotateTokenResponse>;

/** Response of `GET /toolboxes`: the caller's toolboxes, decommissioned ones included, oldest first. */
export const ToolboxListResponse = z.object({ toolboxes: z.array(ToolboxResponse) });
export type ToolboxListResponse = z.infer<typeof ToolboxListResponse>;

// Instances -----------------------------------------------------------------------------------

/**
 * Body of `POST /instances`. `port` is the port the server listens on inside the container;
 * the host port is allocated by the control plane. `secrets` are environment variables whose
 * values are stored apart and never returned. A name is either in `env` or in `secrets`.
 */
export const InstanceDeployRequest = z
  .strictObject({
    toolbox_id: ResourceId,
    name: DnsLabel,
    image: ImageReference,
    port: PortNumber,
    env: EnvMap.optional(),
    secrets: EnvMap.optional(),
    command: z.array(EnvValue).min(1, "must have at least 1 argument when given").max(256, "must have at most 256 arguments").optional(),
    mcp_path: McpPath.optional(),
  })
  .superRefine((request, context) => {
    for (const name of Object.keys(request.secrets ?? {})) {
      if (request.env !== undefined && Object.hasOwn(request.env, name)) {
        context.addIssue({ code: "custom", path: ["secrets", name], message: "must not also be a plain variable in env" });
      }
    }
  });
export type InstanceDeployRequest = z.infer<typeof InstanceDeployRequest>;

/**
 * An instance as the API returns it: spec, intent, lifecycle status with its reason, the last
 * observation of its container and the `endpoint` URL of its MCP server
 * (`http://<agent host>:<host_port><mcp_path>`). `endpoint` is null once the instance is
 * removed, because its host port is free for another instance; `host_port` then is the port it
 * last held. Secret values never appear, only `secret_names`.
 */
export const InstanceResponse = z.object({
  id: ResourceId,
  toolbox_id: ResourceId,
  name: z.string(),
  image: z.string(),
  command: z.array(z.string()).nullable(),
  env: z.record(z.string(), z.string()),
  secret_names: z.array(z.string()),
  container_port: PortNumber,
  host_port: PortNumber,
  mcp_transport: z.string(),
  mcp_path: z.string(),
  endpoint: z.string().nullable(),
  desired_state: DesiredState,
  generation: z.int(),
  spec_generation: z.int(),
  status: InstanceStatus,
  status_reason_code: ReasonCode.nullable(),
  status_reason: z.string().nullable(),
  status_changed_at: Timestamp,
  container_id: z.string().nullable(),
  docker_state: z.string().nullable(),
  exit_code: z.int().nullable(),
  oom_killed: z.boolean().nullable(),
  restart_count: z.int().nullable(),
  health: z.string().nullable(),
  observed_generation: z.int().nullable(),
  started_at: Timestamp.nullable(),
  finished_at: Timestamp.nullable(),
  observed_at: Timestamp.nullable(),
  /** When the lease of an operation in progress expires; null when none is held. */
  lease_expires_at: Timestamp.nullable(),
  version: z.int(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type InstanceResponse = z.infer<typeof InstanceResponse>;

/** Response of `GET /instances`: the caller's instances that are not removed, oldest first. */
export const InstanceListResponse = z.object({ instances: z.array(InstanceResponse) });
export type InstanceListResponse = z.infer<typeof InstanceListResponse>;

/** Query of `GET /instances/{id}/logs`: `tail` lines, default `DTMA_LOGS_DEFAULT_TAIL`. */
export const InstanceLogsRequest = z.object({
  tail: z
    .string()
    .regex(/^\d{1,6}$/, "must be a whole number of lines")
    .transform(Number)
    .pipe(z.int().min(1, "must be at least 1").max(DTMA_LOGS_MAX_TAIL, `must be at most ${DTMA_LOGS_MAX_TAIL}`))
    .default(DTMA_LOGS_DEFAULT_TAIL),
});
export type InstanceLogsRequest = z.infer<typeof InstanceLogsRequest>;

/**
 * Response of `GET /instances/{id}/logs`: the last lines of the container's stdout and stderr,
 * oldest first. `container_id` is null and `lines` empty when the host has no container for it.
 */
export const InstanceLogsResponse = z.object({
  instance_id: ResourceId,
  container_id: z.string().nullable(),
  lines: z.array(LogLine),
});
export type InstanceLogsResponse = z.infer<typeof InstanceLogsResponse>;

/** Default and maximum number of events that one `GET /instances/{id}/events` returns. */
export const INSTANCE_EVENTS_DEFAULT_LIMIT = 100;
export const INSTANCE_EVENTS_MAX_LIMIT = 1000;

/**
 * Query of `GET /instances/{id}/events`: the `limit` newest events, only those with an id below
 * `before_id` when it is given. `before_id` has at most 15 digits, so it stays an exact
 * JavaScript number although the column is bigint.
 */
export const InstanceEventsRequest = z.object({
  limit: z
    .string()
    .regex(/^\d{1,6}$/, "must be a whole number of events")
    .transform(Number)
    .pipe(z.int().min(1, "must be at least 1").max(INSTANCE_EVENTS_MAX_LIMIT, `must be at most ${INSTANCE_EVENTS_MAX_LIMIT}`))
    .default(INSTANCE_EVENTS_DEFAULT_LIMIT),
  before_id: z
    .string()
    .regex(/^\d{1,15}$/, "must be a whole number of at most 15 digits, the id of an event")
    .transform(Number)
    .pipe(z.int().min(1, "must be at least 1"))
    .optional(),
});
export type InstanceEventsRequest = z.infer<typeof InstanceEventsRequest>;

/**
 * One status change of an instance, as the database's trigger recorded it. `from_status` is
 * null for the event of the instance's creation. Ids increase in the order events are written.
 */
export const InstanceEvent = z.object({
  id: z.int().min(1),
  instance_id: ResourceId,
  from_status: InstanceStatus.nullable(),
  to_status: InstanceStatus,
  actor: EventActor,
  reason_code: ReasonCode.nullable(),
  message: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  created_at: Timestamp,
});
export type InstanceEvent = z.infer<typeof InstanceEvent>;

/**
 * Response of `GET /instances/{id}/events`: the newest `limit` events below `before_id`,
 * ordered oldest first. To read the page before, pass the id of its first event as `before_id`.
 * An empty list means there are no older events.
 */
export const InstanceEventsResponse = z.object({ events: z.array(InstanceEvent) });
export type InstanceEventsResponse = z.infer<typeof InstanceEventsResponse>;

// Agent heartbeats ----------------------------------------------------------------------------

/**
 * Response of `POST /dtma-heartbeat`. `ignored_instance_ids` lists reported containers without
 * a live instance on this toolbox (orphans, or instances of another toolbox), which the
 * reconciler handles by their labels.
 */
export const HeartbeatResponse = z.object({
  toolbox_id: ResourceId,
  toolbox_status: ToolboxStatus,
  instances_changed: z.int().min(0),
  ignored_instance_ids: z.array(ResourceId),
});
export type HeartbeatResponse = z.infer<typeof HeartbeatResponse>;

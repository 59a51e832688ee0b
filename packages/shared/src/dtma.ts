import { z } from "zod";

/**
 * The HTTP contract of the DTMA, the agent on every toolbox host. The agent parses requests
 * with these schemas and its callers parse its responses with them.
 */

/** Port the agent listens on when `DTMA_PORT` is not set. */
export const DTMA_DEFAULT_PORT = 30000;

/** Maximum request body in bytes. The agent rejects a larger body with 413 `payload_too_large`. */
export const DTMA_MAX_BODY_BYTES = 64 * 1024;

/** Default and maximum of the `tail` query parameter of the logs route, in lines. */
export const DTMA_LOGS_DEFAULT_TAIL = 100;
export const DTMA_LOGS_MAX_TAIL = 10_000;

// Docker's image reference grammar: an optional registry host with port, lower-case path
// components joined by `/`, then an optional tag and an optional digest.
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
const IMAGE_REFERENCE_PATTERN = new RegExp(
  `^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::${TAG})?(?:@${DIGEST})?$`,
);

/** A container image reference such as `ghcr.io/acme/tool:1.2` or `name@sha256:<hex>`. */
export const ImageReference = z
  .string()
  .min(1, "must not be empty")
  .max(512, "must be at most 512 characters")
  .regex(IMAGE_REFERENCE_PATTERN, "must be a valid image reference such as registry/name:tag");
export type ImageReference = z.infer<typeof ImageReference>;

/** A TCP port number. */
export const PortNumber = z.int().min(1, "must be at least 1").max(65535, "must be at most 65535");

/**
 * An instance or toolbox id: 32 hex digits in the 8-4-4-4-12 UUID layout, any version. A missing
 * id gets no message here, so the parse's error map can call it required.
 */
export const ResourceId = z.guid({ error: (issue) => (issue.input === undefined ? undefined : "must be a UUID") });

/** Environment variable names the agent passes to a container: letters, digits, underscore. */
export const EnvName = z
  .string()
  .max(256, "must be at most 256 characters")
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must start with a letter or underscore and contain only letters, digits and underscores");

const NO_NUL = (value: string) => !value.includes("\u0000");

/** A command argument or env value. Linux argv and environ entries cannot contain NUL. */
const ProcessString = z.string().refine(NO_NUL, "must not contain NUL characters");

export const DesiredContainerState = z.enum(["running", "stopped"]);
export type DesiredContainerState = z.infer<typeof DesiredContainerState>;

/**
 * The body of `PUT /v1/instances/{id}`: the whole spec of one instance at one generation.
 * Unknown keys are dropped rather than rejected, so a newer control plane can talk to an older
 * agent. Optional fields also accept null, the value a database column gives for "unset".
 */
export const InstanceEnsureRequest = z.object({
  generation: z.int().min(0, "must be at least 0"),
  image: ImageReference,
  port: PortNumber,
  host_port: PortNumber,
  desired_state: DesiredContainerState,
  command: z.array(ProcessString).max(256, "must have at most 256 arguments").nullish(),
  env: z.record(EnvName, ProcessString).nullish(),
  memory_mb: z.int().min(6, "must be at least 6 (the engine minimum)").max(1_048_576, "must be at most 1048576").nullish(),
  cpus: z.number().positive("must be greater than 0").max(1024, "must be at most 1024").nullish(),
  toolbox_id: ResourceId.nullish(),
});
export type InstanceEnsureRequest = z.infer<typeof InstanceEnsureRequest>;

/** Path parameters of every `/v1/instances/{id}` route. */
export const InstancePathParams = z.object({ id: ResourceId });
export type InstancePathParams = z.infer<typeof InstancePathParams>;

/** Query of `GET /v1/instances/{id}/logs`, where `tail` is a decimal line count. */
export const InstanceLogsQuery = z.object({
  tail: z
    .string()
    .regex(/^\d{1,6}$/, "must be a whole number of lines")
    .transform(Number)
    .pipe(z.int().min(1, "must be at least 1").max(DTMA_LOGS_MAX_TAIL, `must be at most ${DTMA_LOGS_MAX_TAIL}`))
    .optional(),
});
export type InstanceLogsQuery = z.infer<typeof InstanceLogsQuery>;

/**
 * The state of one instance's container as the engine reports it. `state` is the engine's
 * word (`created`, `running`, `restarting`, `paused`, `exited`, `dead`, ...). `exit_code` is set
 * only for a container that is not running. `generation` is null for a container without the
 * generation label, for example one created by hand with the instance's name.
 */
export const InstanceObservation = z.object({
  instance_id: ResourceId,
  container_id: z.string().min(1),
  state: z.string().min(1),
  exit_code: z.int().nullable(),
  oom_killed: z.boolean(),
  restart_count: z.int().min(0),
  generation: z.int().min(0).nullable(),
  host_port: PortNumber.nullable(),
  started_at: z.iso.datetime().nullable(),
  finished_at: z.iso.datetime().nullable(),
  health: z.string().nullable(),
});
export type InstanceObservation = z.infer<typeof InstanceObservation>;

/** Response of `PUT /v1/instances/{id}`: 201 when a container was created, 200 otherwise. */
export const InstanceEnsureResponse = InstanceObservation;
export type InstanceEnsureResponse = z.infer<typeof InstanceEnsureResponse>;

/** Response of `POST /v1/instances/{id}/start`, `/stop` and `/restart`. */
export const InstanceActionResponse = InstanceObservation;
export type InstanceActionResponse = z.infer<typeof InstanceActionResponse>;

/** Response of `GET /v1/inventory`: one observation per container the agent manages. */
export const InventoryResponse = z.object({
  agent_version: z.string(),
  engine_version: z.string(),
  instances: z.array(InstanceObservation),
});
export type InventoryResponse = z.infer<typeof InventoryResponse>;

export const LogStream = z.enum(["stdout", "stderr"]);
export type LogStream = z.infer<typeof LogStream>;

/** One log line with the engine's timestamp of it. */
export const LogLine = z.object({
  stream: LogStream,
  time: z.iso.datetime().nullable(),
  text: z.string(),
});
export type LogLine = z.infer<typeof LogLine>;

/** Response of `GET /v1/instances/{id}/logs`: the last lines of both streams, oldest first. */
export const LogsResponse = z.object({
  instance_id: ResourceId,
  container_id: z.string(),
  lines: z.array(LogLine),
});
export type LogsResponse = z.infer<typeof LogsResponse>;

/** Response of the open `GET /healthz`. */
export const HealthResponse = z.object({
  status: z.literal("ok"),
  agent_version: z.string(),
});
export type HealthResponse = z.infer<typeof HealthResponse>;

/** Engine events the agent forwards. Podman's `remove` is reported as Docker's `destroy`. */
export const ContainerEventAction = z.enum(["start", "die", "oom", "destroy"]);
export type ContainerEventAction = z.infer<typeof ContainerEventAction>;

/** One engine event about a managed container. `exit_code` is set on `die` events. */
export const ContainerEvent = z.object({
  instance_id: ResourceId,
  container_id: z.string(),
  action: ContainerEventAction,
  time: z.iso.datetime(),
  exit_code: z.int().nullable(),
});
export type ContainerEvent = z.infer<typeof ContainerEvent>;

/** Maximum length of the versions in a heartbeat, in characters; engine versions are like `26.1.0`. */
export const HEARTBEAT_MAX_VERSION_LENGTH = 100;

/**
 * Maximum length of the engine's words in a heartbeat (container id, state, health), in
 * characters. Docker and Podman container ids have 64 hex digits, states and health one word.
 */
export const HEARTBEAT_MAX_WORD_LENGTH = 128;

const HeartbeatWord = z.string().max(HEARTBEAT_MAX_WORD_LENGTH, `must be at most ${HEARTBEAT_MAX_WORD_LENGTH} characters`);

/**
 * Body the agent sends to `POST /dtma-heartbeat` with its token as Bearer credential: its full
 * inventory plus the events seen since the last accepted heartbeat, oldest first.
 */
export const HeartbeatRequest = z.object({
  toolbox_id: ResourceId,
  agent_version: z.string().max(HEARTBEAT_MAX_VERSION_LENGTH, `must be at most ${HEARTBEAT_MAX_VERSION_LENGTH} characters`),
  engine_version: z.string().max(HEARTBEAT_MAX_VERSION_LENGTH, `must be at most ${HEARTBEAT_MAX_VERSION_LENGTH} characters`),
  sent_at: z.iso.datetime(),
  instances: z.array(InstanceObservation.extend({ container_id: HeartbeatWord, state: HeartbeatWord, health: HeartbeatWord.nullable() })),
  events: z.array(ContainerEvent.extend({ container_id: HeartbeatWord })),
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;

/** One rejected input of an `invalid_request` error: a dotted path such as `env.A` and why. */
export const FieldIssue = z.object({ field: z.string(), message: z.string() });
export type FieldIssue = z.infer<typeof FieldIssue>;

/** The `details` of an `invalid_request` error. */
export const InvalidRequestDetails = z.object({ fields: z.array(FieldIssue) });
export type InvalidRequestDetails = z.infer<typeof InvalidRequestDetails>;

/**
 * Converts zod issues to field issues. An issue about the whole input names the field `body`.
 * Parse with `{ error: fieldErrorMap }` so that every message reads as a predicate of the field.
 */
export function fieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => {
    const field = issue.path.map(String).join(".");
    return { field: field === "" ? "body" : field, message: issue.message };
  });
}

import {
  errorCodeForSqlState,
  SQLSTATE,
  type DesiredState,
  type EventActor,
  type InstanceObservation,
  type InstanceStatus,
  type ReasonCode,
  type ToolboxStatus,
} from "@berth/shared";
import type { Sql } from "./db.ts";
import { ApiError } from "./errors.ts";

/**
 * The one place where edge functions and the reconciler read and write the registry. Every
 * write goes through a `berth_private` SQL function, which checks version, lease and
 * transition on a locked row, and every database error with a Berth SQLSTATE becomes an
 * `ApiError` with the code from `errorCodeForSqlState`.
 */

/** A `public.toolboxes` row with database types converted to JavaScript ones. */
export interface ToolboxRow {
  id: string;
  owner_id: string;
  name: string;
  agent_url: string;
  agent_port: number;
  port_range_start: number;
  port_range_end: number;
  status: ToolboxStatus;
  agent_version: string | null;
  last_heartbeat_at: Date | null;
  consecutive_failures: number;
  last_failure: string | null;
  token_version: number;
  last_reconciled_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** A `public.tool_instances` row. Bigint columns become numbers and `cpus` a number. */
export interface InstanceRow {
  id: string;
  owner_id: string;
  toolbox_id: string;
  name: string;
  image: string;
  command: string[] | null;
  env: Record<string, string>;
  secret_names: string[];
  container_port: number;
  host_port: number;
  mcp_transport: string;
  mcp_path: string;
  memory_mb: number | null;
  cpus: number | null;
  desired_state: DesiredState;
  generation: number;
  spec_generation: number;
  status: InstanceStatus;
  status_reason_code: ReasonCode | null;
  status_reason: string | null;
  status_changed_at: Date;
  container_id: string | null;
  docker_state: string | null;
  exit_code: number | null;
  oom_killed: boolean | null;
  restart_count: number | null;
  health: string | null;
  observed_generation: number | null;
  started_at: Date | null;
  finished_at: Date | null;
  observed_at: Date | null;
  restart_attempts: number;
  next_attempt_at: Date | null;
  version: number;
  lease_holder: string | null;
  lease_nonce: string | null;
  lease_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** A `public.instance_events` row. The bigint `id` becomes a number. */
export interface InstanceEventRow {
  id: number;
  instance_id: string;
  owner_id: string;
  toolbox_id: string;
  from_status: InstanceStatus | null;
  to_status: InstanceStatus;
  actor: EventActor;
  reason_code: ReasonCode | null;
  message: string | null;
  details: Record<string, unknown>;
  created_at: Date;
}

export interface InstanceEventsQuery {
  limit: number;
  /** Only events with an id below this one, to page back through the history. */
  beforeId?: number;
}

/** A row of `berth_private.idempotency_keys`; `response_status` is set once the request completed. */
export interface IdempotencyRecord {
  key: string;
  request_hash: string;
  response_status: number | null;
  response: unknown;
}

export interface CreateInstanceInput {
  ownerId: string;
  toolboxId: string;
  name: string;
  image: string;
  containerPort: number;
  env?: Record<string, string>;
  /** Secret values; stored outside the row, which keeps only their names. */
  secrets?: Record<string, string>;
  command?: string[] | null;
  mcpPath?: string;
  desiredState?: "running" | "stopped";
}

export interface SetStatusInput {
  instanceId: string;
  status: InstanceStatus;
  reasonCode: ReasonCode;
  message?: string | null;
  actor: EventActor;
  /** Extra fields for the event that a status change appends. */
  details?: Record<string, unknown>;
}

export interface CreateToolboxInput {
  ownerId: string;
  name: string;
  agentUrl: string;
  agentPort?: number;
}

export interface Registry {
  getInstance(id: string): Promise<InstanceRow | null>;
  /** Returns the owner's instance or raises 404 `instance_not_found`, also for another owner's. */
  getOwnedInstance(ownerId: string, id: string): Promise<InstanceRow>;
  /** Lists an owner's instances that are not removed, oldest first. */
  listOwnedInstances(ownerId: string, filter?: { toolboxId?: string }): Promise<InstanceRow[]>;
  /**
   * Lists the `limit` newest events of an owner's instance, oldest first. Another owner's
   * instance has no events here, so callers check ownership with `getOwnedInstance` first.
   */
  listOwnedInstanceEvents(ownerId: string, instanceId: string, query: InstanceEventsQuery): Promise<InstanceEventRow[]>;
  /** Lists the instances of a toolbox that are not removed. */
  listToolboxInstances(toolboxId: string): Promise<InstanceRow[]>;
  getToolbox(id: string): Promise<ToolboxRow | null>;
  /** Returns the owner's toolbox or raises 404 `toolbox_not_found`, also for another owner's. */
  getOwnedToolbox(ownerId: string, id: string): Promise<ToolboxRow>;
  listOwnedToolboxes(ownerId: string): Promise<ToolboxRow[]>;

  createInstance(input: CreateInstanceInput): Promise<InstanceRow>;
  recordIntent(id: string, expectedVersion: number, desiredState: DesiredState): Promise<InstanceRow>;
  /** Claims or renews the lease; raises 409 `lease_held` while another holder's lease is unexpired. */
  claimInstanceLease(id: string, holder: string, ttlSeconds: number): Promise<InstanceRow>;
  /** Claims the lease as `claimInstanceLease` does, only while the row is at `expectedVersion`; raises `version_conflict` otherwise. */
  claimInstanceLeaseAtVersion(id: string, expectedVersion: number, holder: string, ttlSeconds: number): Promise<InstanceRow>;
  /** Releases the lease if `nonce` is still current; returns whether it was. */
  releaseInstanceLease(id: string, nonce: string): Promise<boolean>;
  /** Sets status under a lease; raises `lease_lost` for a stale nonce, `invalid_transition` for a forbidden change. */
  setInstanceStatus(nonce: string, input: SetStatusInput): Promise<InstanceRow>;
  /** Sets status without a lease if the row is still at `expectedVersion` and nobody holds a lease. */
  setInstanceStatusAtVersion(expectedVersion: number, input: SetStatusInput): Promise<InstanceRow>;
  recordRestartAttempt(id: string, nonce: string, backoff?: { baseSeconds: number; maxSeconds: number }): Promise<InstanceRow>;
  /** Moves a leased instance to another free host port and bumps its spec generation. */
  reallocateHostPort(id: string, nonce: string): Promise<InstanceRow>;
  /** Records one observation (null: no container); returns the row only when something changed. */
  recordObservation(toolboxId: string, id: string, observation: InstanceObservation | null): Promise<InstanceRow | null>;
  /** Records a toolbox's whole inventory; returns the rows that changed. */
  recordInventory(toolboxId: string, observations: InstanceObservation[]): Promise<InstanceRow[]>;
  /** Returns the secret environment variables of an instance. Never log the result. */
  instanceSecretValues(id: string): Promise<Record<string, string>>;

  createToolbox(input: CreateToolboxInput): Promise<ToolboxRow>;
  rotateToolboxToken(id: string): Promise<ToolboxRow>;
  decommissionToolbox(id: string): Promise<ToolboxRow>;
  recordToolboxHeartbeat(id: string, agentVersion: string | null): Promise<ToolboxRow>;
  recordToolboxFailure(id: string, error: string, options?: { threshold?: number; actor?: EventActor }): Promise<ToolboxRow>;

  beginIdempotentRequest(ownerId: string, key: string, requestHash: string): Promise<IdempotencyRecord>;
  completeIdempotentRequest(ownerId: string, key: string, status: number, response: unknown): Promise<void>;
}

/** Creates the registry on a client that connects as the database owner (SUPABASE_DB_URL). */
export function createRegistry(sql: Sql): Registry {
  return { ...instanceReads(sql), ...toolboxReads(sql), ...instanceWrites(sql), ...toolboxWrites(sql), ...idempotency(sql) };
}

type RawRow = Record<string, unknown>;

function instanceReads(sql: Sql) {
  return {
    getInstance: (id: string) =>
      guarded(async () => firstInstance(await sql`select * from public.tool_instances where id = ${id}`)),

    getOwnedInstance: (ownerId: string, id: string) =>
      guarded(async () => {
        const row = firstInstance(await sql`select * from public.tool_instances where id = ${id} and owner_id = ${ownerId}`);
        if (row === null) throw new ApiError("instance_not_found", `instance ${id} not found`);
        return row;
      }),

    listOwnedInstances: (ownerId: string, filter: { toolboxId?: string } = {}) =>
      guarded(async () => {
        const rows = await sql`
          select * from public.tool_instances
          where owner_id = ${ownerId} and status <> 'removed'
            and (${filter.toolboxId ?? null}::uuid is null or toolbox_id = ${filter.toolboxId ?? null}::uuid)
          order by created_at, id`;
        return rows.map((row) => toInstance(row));
      }),

    listToolboxInstances: (toolboxId: string) =>
      guarded(async () => {
        const rows = await sql`
          select * from public.tool_instances where toolbox_id = ${toolboxId} and status <> 'removed' order by id`;
        return rows.map((row) => toInstance(row));
      }),

    listOwnedInstanceEvents: (ownerId: string, instanceId: string, query: InstanceEventsQuery) =>
      guarded(async () => {
        // The inner query takes the newest events through the (instance_id, id) index, and the
        // outer one puts them in the order a history is read in.
        const rows = await sql`
          select * from (
            select * from public.instance_events
            where instance_id = ${instanceId} and owner_id = ${ownerId}
              and (${query.beforeId ?? null}::bigint is null or id < ${query.beforeId ?? null}::bigint)
            order by id desc
            limit ${query.limit}
          ) newest
          order by id`;
        return rows.map((row) => toInstanceEvent(row));
      }),
  };
}

function toolboxReads(sql: Sql) {
  return {
    getToolbox: (id: string) => guarded(async () => firstToolbox(await sql`select * from public.toolboxes where id = ${id}`)),

    getOwnedToolbox: (ownerId: string, id: string) =>
      guarded(async () => {
        const row = firstToolbox(await sql`select * from public.toolboxes where id = ${id} and owner_id = ${ownerId}`);
        if (row === null) throw new ApiError("toolbox_not_found", `toolbox ${id} not found`);
        return row;
      }),

    listOwnedToolboxes: (ownerId: string) =>
      guarded(async () => {
        const rows = await sql`select * from public.toolboxes where owner_id = ${ownerId} order by created_at, id`;
        return rows.map((row) => toToolbox(row));
      }),
  };
}

function instanceWrites(sql: Sql) {
  return {
    createInstance: (input: CreateInstanceInput) =>
      guarded(async () =>
        oneInstance(
          await sql`
            select * from berth_private.create_instance(
              p_owner_id => ${input.ownerId},
              p_toolbox_id => ${input.toolboxId},
              p_name => ${input.name},
              p_image => ${input.image},
              p_container_port => ${input.containerPort},
              p_env => ${sql.json(input.env ?? {})},
              p_secrets => ${sql.json(input.secrets ?? {})},
              p_command => ${input.command ? sql.array(input.command) : null}::text[],
              p_mcp_path => ${input.mcpPath ?? "/mcp"},
              p_desired_state => ${input.desiredState ?? "running"}
            )`,
        ),
      ),

    recordIntent: (id: string, expectedVersion: number, desiredState: DesiredState) =>
      guarded(async () => oneInstance(await sql`select * from berth_private.record_intent(${id}, ${expectedVersion}, ${desiredState})`)),

    claimInstanceLease: (id: string, holder: string, ttlSeconds: number) =>
      guarded(async () => oneInstance(await sql`select * from berth_private.claim_instance_lease(${id}, ${holder}, ${ttlSeconds})`)),

    claimInstanceLeaseAtVersion: (id: string, expectedVersion: number, holder: string, ttlSeconds: number) =>
      guarded(async () =>
        oneInstance(await sql`select * from berth_private.claim_instance_lease_at_version(${id}, ${expectedVersion}, ${holder}, ${ttlSeconds})`),
      ),

    releaseInstanceLease: (id: string, nonce: string) =>
      guarded(async () => {
        const [row] = await sql`select berth_private.release_instance_lease(${id}, ${nonce}) as released`;
        return row?.released === true;
      }),

    setInstanceStatus: (nonce: string, input: SetStatusInput) =>
      guarded(async () =>
        oneInstance(
          await sql`
            select * from berth_private.set_instance_status(
              ${input.instanceId}, ${nonce}, ${input.status}, ${input.reasonCode}, ${input.message ?? null},
              ${input.actor}, ${input.details ? sql.json(toJson(input.details)) : null}
            )`,
        ),
      ),

    setInstanceStatusAtVersion: (expectedVersion: number, input: SetStatusInput) =>
      guarded(async () =>
        oneInstance(
          await sql`
            select * from berth_private.set_instance_status_at_version(
              ${input.instanceId}, ${expectedVersion}, ${input.status}, ${input.reasonCode}, ${input.message ?? null},
              ${input.actor}, ${input.details ? sql.json(toJson(input.details)) : null}
            )`,
        ),
      ),

    recordRestartAttempt: (id: string, nonce: string, backoff = { baseSeconds: 10, maxSeconds: 300 }) =>
      guarded(async () =>
        oneInstance(await sql`select * from berth_private.record_restart_attempt(${id}, ${nonce}, ${backoff.baseSeconds}, ${backoff.maxSeconds})`),
      ),

    reallocateHostPort: (id: string, nonce: string) =>
      guarded(async () => oneInstance(await sql`select * from berth_private.reallocate_host_port(${id}, ${nonce})`)),

    ...observationWrites(sql),
  };
}

function observationWrites(sql: Sql) {
  return {
    recordObservation: (toolboxId: string, id: string, observation: InstanceObservation | null) =>
      guarded(async () => {
        const rows = await sql`
          select * from berth_private.record_observation(${toolboxId}, ${id}, ${observation === null ? null : sql.json(toJson(observation))})`;
        return firstInstance(rows);
      }),

    recordInventory: (toolboxId: string, observations: InstanceObservation[]) =>
      guarded(async () => {
        const rows = await sql`select * from berth_private.record_inventory(${toolboxId}, ${sql.json(toJson(observations))})`;
        return rows.map((row) => toInstance(row));
      }),

    instanceSecretValues: (id: string) =>
      guarded(async () => {
        const [row] = await sql`select berth_private.instance_secret_values(${id}) as secrets`;
        return (row?.secrets ?? {}) as Record<string, string>;
      }),
  };
}

function toolboxWrites(sql: Sql) {
  return {
    createToolbox: (input: CreateToolboxInput) =>
      guarded(async () =>
        oneToolbox(
          await sql`
            select * from berth_private.create_toolbox(
              p_owner_id => ${input.ownerId}, p_name => ${input.name}, p_agent_url => ${input.agentUrl},
              p_agent_port => ${input.agentPort ?? 30000}
            )`,
        ),
      ),

    rotateToolboxToken: (id: string) => guarded(async () => oneToolbox(await sql`select * from berth_private.rotate_toolbox_token(${id})`)),

    decommissionToolbox: (id: string) => guarded(async () => oneToolbox(await sql`select * from berth_private.decommission_toolbox(${id})`)),

    recordToolboxHeartbeat: (id: string, agentVersion: string | null) =>
      guarded(async () => oneToolbox(await sql`select * from berth_private.record_toolbox_heartbeat(${id}, ${agentVersion})`)),

    recordToolboxFailure: (id: string, error: string, options: { threshold?: number; actor?: EventActor } = {}) =>
      guarded(async () =>
        oneToolbox(
          await sql`select * from berth_private.record_toolbox_failure(${id}, ${error}, ${options.threshold ?? 3}, ${options.actor ?? "reconciler"})`,
        ),
      ),
  };
}

function idempotency(sql: Sql) {
  return {
    beginIdempotentRequest: (ownerId: string, key: string, requestHash: string) =>
      guarded(async () => {
        const [row] = await sql`select * from berth_private.begin_idempotent_request(${ownerId}, ${key}, ${requestHash})`;
        return {
          key: String(row?.key),
          request_hash: String(row?.request_hash),
          response_status: row?.response_status === null || row?.response_status === undefined ? null : Number(row.response_status),
          response: row?.response ?? null,
        };
      }),

    completeIdempotentRequest: (ownerId: string, key: string, status: number, response: unknown) =>
      guarded(async () => {
        await sql`select berth_private.complete_idempotent_request(${ownerId}, ${key}, ${status}, ${sql.json(toJson(response))})`;
      }),
  };
}

// Row conversion ------------------------------------------------------------------------------

const INSTANCE_NUMBER_COLUMNS = ["generation", "spec_generation", "observed_generation", "version", "memory_mb", "cpus"] as const;

/** Converts a raw row: postgres.js returns bigint and numeric columns as strings. */
export function toInstance(row: RawRow): InstanceRow {
  const converted: RawRow = { ...row };
  for (const column of INSTANCE_NUMBER_COLUMNS) {
    const value = row[column];
    converted[column] = value === null || value === undefined ? null : Number(value);
  }
  return converted as unknown as InstanceRow;
}

/** Converts a raw event row: postgres.js returns the bigint id as a string. */
export function toInstanceEvent(row: RawRow): InstanceEventRow {
  return { ...row, id: Number(row.id) } as unknown as InstanceEventRow;
}

export function toToolbox(row: RawRow): ToolboxRow {
  return { ...row } as unknown as ToolboxRow;
}

function firstInstance(rows: readonly RawRow[]): InstanceRow | null {
  const row = rows[0];
  return row === undefined || row.id === null ? null : toInstance(row);
}

function oneInstance(rows: readonly RawRow[]): InstanceRow {
  const row = firstInstance(rows);
  if (row === null) throw new Error("a registry write function returned no instance row");
  return row;
}

function firstToolbox(rows: readonly RawRow[]): ToolboxRow | null {
  const row = rows[0];
  return row === undefined || row.id === null ? null : toToolbox(row);
}

function oneToolbox(rows: readonly RawRow[]): ToolboxRow {
  const row = firstToolbox(rows);
  if (row === null) throw new Error("a registry write function returned no toolbox row");
  return row;
}

/** postgres.js's `sql.json` takes its own JSON type; a plain round trip satisfies it. */
function toJson(value: unknown): never {
  return JSON.parse(JSON.stringify(value)) as never;
}

// Errors --------------------------------------------------------------------------------------

interface DatabaseError {
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  column_name?: string;
}

function isDatabaseError(error: unknown): error is DatabaseError {
  return error instanceof Error && typeof (error as { code?: unknown }).code === "string" && "severity" in error;
}

/**
 * Converts a database error with a Berth SQLSTATE into an `ApiError`. 22023 names the column in
 * `details.fields`, taken from the error's COLUMN field or from `column=` in DETAIL, with the
 * rule from HINT. Any other error is returned unchanged, so it ends as a logged 500.
 */
export function databaseErrorToApiError(error: unknown): unknown {
  if (!isDatabaseError(error)) return error;
  const code = errorCodeForSqlState(error.code);
  if (code === "internal_error") return error;

  if (error.code !== SQLSTATE.invalidParameterValue) return new ApiError(code, error.message);

  const column = error.column_name || /(?:^|\s)(?:column|field)=([a-z_]+)/.exec(error.detail ?? "")?.[1] || "body";
  const rule = error.hint ? `${error.message}. ${error.hint}` : error.message;
  return new ApiError(code, error.message, { fields: [{ field: column, message: rule }] });
}

async function guarded<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw databaseErrorToApiError(error);
  }
}

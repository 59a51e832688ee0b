import postgres, { type Sql } from "postgres";
import type { InstanceStatus } from "../../packages/shared/src/index.ts";

/** Columns of public.toolboxes as postgres.js returns them. */
export interface ToolboxRow {
  id: string;
  owner_id: string;
  name: string;
  status: string;
  agent_port: number;
  port_range_start: number;
  port_range_end: number;
  consecutive_failures: number;
  token_version: number;
  last_heartbeat_at: Date | null;
  reconcile_lease_holder: string | null;
}

/** Columns of public.tool_instances as postgres.js returns them (bigints arrive as strings). */
export interface InstanceRow {
  id: string;
  owner_id: string;
  toolbox_id: string;
  name: string;
  host_port: number;
  status: InstanceStatus;
  status_reason_code: string | null;
  status_reason: string | null;
  desired_state: string;
  generation: string;
  spec_generation: string;
  version: string;
  secret_names: string[];
  env: Record<string, string>;
  container_id: string | null;
  docker_state: string | null;
  exit_code: number | null;
  observed_at: Date | null;
  lease_holder: string | null;
  lease_nonce: string | null;
  lease_expires_at: Date | null;
  restart_attempts: number;
  next_attempt_at: Date | null;
}

export interface ToolboxOptions {
  name?: string;
  agentPort?: number;
  portRangeStart?: number;
  portRangeEnd?: number;
}

let toolboxCounter = 0;
let instanceCounter = 0;

/** Registers a toolbox through berth_private.create_toolbox, as the toolboxes function does. */
export async function createToolbox(sql: Sql, ownerId: string, options: ToolboxOptions = {}): Promise<ToolboxRow> {
  toolboxCounter += 1;
  const [row] = await sql<ToolboxRow[]>`
    select * from berth_private.create_toolbox(
      ${ownerId}, ${options.name ?? `box-${toolboxCounter}`}, 'http://127.0.0.1:30000',
      ${options.agentPort ?? 30000}, ${options.portRangeStart ?? 30001}, ${options.portRangeEnd ?? 30999}
    )`;
  return row!;
}

export interface InstanceOptions {
  name?: string;
  image?: string;
  containerPort?: number;
  env?: Record<string, string>;
  secrets?: Record<string, string>;
}

/** Creates an instance through berth_private.create_instance, as the deploy function does. */
export async function createInstance(sql: Sql, ownerId: string, toolboxId: string, options: InstanceOptions = {}): Promise<InstanceRow> {
  instanceCounter += 1;
  const [row] = await sql<InstanceRow[]>`
    select * from berth_private.create_instance(
      p_owner_id => ${ownerId},
      p_toolbox_id => ${toolboxId},
      p_name => ${options.name ?? `tool-${instanceCounter}`},
      p_image => ${options.image ?? "ghcr.io/example/mcp-server:1.0"},
      p_container_port => ${options.containerPort ?? 8080},
      p_env => ${sql.json(options.env ?? {})},
      p_secrets => ${sql.json(options.secrets ?? {})}
    )`;
  return row!;
}

/**
 * Inserts an instance row directly in the given status, bypassing create_instance. Inserts are
 * not guarded by the transition trigger, which makes every status reachable for tests.
 */
export async function insertInstanceInStatus(
  sql: Sql,
  ownerId: string,
  toolboxId: string,
  status: InstanceStatus,
  hostPort: number,
): Promise<InstanceRow> {
  instanceCounter += 1;
  const [row] = await sql<InstanceRow[]>`
    insert into public.tool_instances (owner_id, toolbox_id, name, image, container_port, host_port, status, status_reason_code)
    values (${ownerId}, ${toolboxId}, ${`raw-${instanceCounter}`}, 'nginx:1.27', 8080, ${hostPort}, ${status}, 'Created')
    returning *`;
  return row!;
}

/** Returns the PostgresError that `promise` rejects with; fails when it resolves. */
export async function sqlError(promise: Promise<unknown>): Promise<postgres.PostgresError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof postgres.PostgresError) return error;
    throw error;
  }
  throw new Error("expected the statement to fail with a database error, but it succeeded");
}

/** Reads an instance as the superuser, bypassing row level security. */
export async function readInstance(sql: Sql, id: string): Promise<InstanceRow> {
  const [row] = await sql<InstanceRow[]>`select * from public.tool_instances where id = ${id}`;
  if (!row) throw new Error(`instance ${id} not found`);
  return row;
}

/** Counts the events recorded for an instance. */
export async function countEvents(sql: Sql, instanceId: string): Promise<number> {
  const [row] = await sql<{ count: number }[]>`select count(*)::int as count from public.instance_events where instance_id = ${instanceId}`;
  return row!.count;
}

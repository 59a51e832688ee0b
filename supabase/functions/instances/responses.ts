import type { InstanceEvent, InstanceResponse } from "@berth/shared";
import type { InstanceEventRow, InstanceRow, ToolboxRow } from "../_shared/registry.ts";

/** Converts an instance row to its API form. Lease holder and nonce stay internal. */
export function instanceResponse(row: InstanceRow, toolbox: Pick<ToolboxRow, "agent_url">): InstanceResponse {
  return {
    id: row.id,
    toolbox_id: row.toolbox_id,
    name: row.name,
    image: row.image,
    command: row.command,
    env: row.env,
    secret_names: row.secret_names,
    container_port: row.container_port,
    host_port: row.host_port,
    mcp_transport: row.mcp_transport,
    mcp_path: row.mcp_path,
    endpoint: endpointOf(row, toolbox),
    desired_state: row.desired_state,
    generation: row.generation,
    spec_generation: row.spec_generation,
    status: row.status,
    status_reason_code: row.status_reason_code,
    status_reason: row.status_reason,
    status_changed_at: iso(row.status_changed_at),
    container_id: row.container_id,
    docker_state: row.docker_state,
    exit_code: row.exit_code,
    oom_killed: row.oom_killed,
    restart_count: row.restart_count,
    health: row.health,
    observed_generation: row.observed_generation,
    started_at: isoOrNull(row.started_at),
    finished_at: isoOrNull(row.finished_at),
    observed_at: isoOrNull(row.observed_at),
    lease_expires_at: isoOrNull(row.lease_expires_at),
    version: row.version,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/** Converts an event row to its API form. Owner and toolbox ids are left out because the instance carries them. */
export function eventResponse(row: InstanceEventRow): InstanceEvent {
  return {
    id: row.id,
    instance_id: row.instance_id,
    from_status: row.from_status,
    to_status: row.to_status,
    actor: row.actor,
    reason_code: row.reason_code,
    message: row.message,
    details: row.details,
    created_at: iso(row.created_at),
  };
}

/**
 * Returns the MCP endpoint: the agent's host name with the instance's host port and path. The
 * agent publishes container ports on the host it runs on, over plain HTTP. A removed instance
 * has none, because its host port may already belong to another instance.
 */
export function endpointOf(row: Pick<InstanceRow, "host_port" | "mcp_path" | "status">, toolbox: Pick<ToolboxRow, "agent_url">): string | null {
  if (row.status === "removed") return null;
  const host = new URL(toolbox.agent_url).hostname;
  return `http://${host}:${row.host_port}${row.mcp_path}`;
}

function iso(value: Date): string {
  return new Date(value).toISOString();
}

function isoOrNull(value: Date | null): string | null {
  return value === null ? null : iso(value);
}

import type { ToolboxResponse } from "@berth/shared";
import type { ToolboxRow } from "../_shared/registry.ts";

/** Converts a toolbox row to its API form. Reconcile lease columns stay internal. */
export function toolboxResponse(row: ToolboxRow): ToolboxResponse {
  return {
    id: row.id,
    name: row.name,
    agent_url: row.agent_url,
    agent_port: row.agent_port,
    port_range_start: row.port_range_start,
    port_range_end: row.port_range_end,
    status: row.status,
    agent_version: row.agent_version,
    last_heartbeat_at: row.last_heartbeat_at === null ? null : new Date(row.last_heartbeat_at).toISOString(),
    last_failure: row.last_failure,
    token_version: row.token_version,
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
  };
}

/**
 * Builds the `docker run` line that installs the agent on the host with its token. The agent
 * publishes container ports on all host addresses (DTMA_PUBLISH_IP=0.0.0.0), because instance
 * endpoints use the agent's host name.
 */
export function installCommand(toolbox: ToolboxRow, token: string, controlPlaneUrl: string): string {
  const port = toolbox.agent_port;
  return [
    "docker run -d --name berth-dtma --restart unless-stopped",
    "-v /var/run/docker.sock:/var/run/docker.sock",
    `-e DTMA_TOKEN=${token}`,
    `-e DTMA_TOOLBOX_ID=${toolbox.id}`,
    `-e DTMA_CONTROL_PLANE_URL=${controlPlaneUrl}`,
    `-e DTMA_PORT=${port}`,
    "-e DTMA_PUBLISH_IP=0.0.0.0",
    `-p ${port}:${port}`,
    "berth-dtma",
  ].join(" ");
}

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

/** Image name of the agent, as `docker build -f packages/dtma/Dockerfile -t berth-dtma .` tags it. */
const AGENT_IMAGE = "berth-dtma";

/**
 * Builds the shell command that installs the agent on the host with its token. MCP clients reach
 * instances at `http://<agent_url host>:<host_port><mcp_path>`, so the agent port and the
 * containers' ports (`DTMA_PUBLISH_IP`) are published on that host when it is an IP address.
 * For a host name the address is not known here, so both are published on every IPv4 address,
 * and a comment line before the command names the ports to firewall.
 */
export function installCommand(toolbox: ToolboxRow, token: string, controlPlaneUrl: string): string {
  const port = toolbox.agent_port;
  const hostIp = ipAddressOf(toolbox.agent_url);
  const publishIp = hostIp ?? "0.0.0.0";
  const words = [
    "docker", "run", "-d", "--name", "berth-dtma", "--restart", "unless-stopped",
    "-v", "/var/run/docker.sock:/var/run/docker.sock",
    "-e", `DTMA_TOKEN=${token}`,
    "-e", `DTMA_TOOLBOX_ID=${toolbox.id}`,
    "-e", `DTMA_CONTROL_PLANE_URL=${controlPlaneUrl}`,
    "-e", `DTMA_PORT=${port}`,
    "-e", `DTMA_PUBLISH_IP=${publishIp}`,
    "-p", `${publishIp.includes(":") ? `[${publishIp}]` : publishIp}:${port}:${port}`,
    AGENT_IMAGE,
  ];
  const command = words.map(shellQuote).join(" ");
  if (hostIp !== null) return command;

  const warning =
    `# agent_url names a host, not an IP address, so the agent (port ${port}) and the MCP servers ` +
    `(ports ${toolbox.port_range_start}-${toolbox.port_range_end}) are published on every IPv4 address of the host. ` +
    `Firewall them: allow port ${port} only from the control plane and the MCP ports only from MCP clients.`;
  return `${warning}\n${command}`;
}

/**
 * Returns the agent URL's host when it is an IPv4 or IPv6 address, without IPv6 brackets, or
 * null for a host name. The URL parser has already normalized IPv4 forms such as `0x7f.1`.
 */
function ipAddressOf(agentUrl: string): string | null {
  const host = new URL(agentUrl).hostname;
  if (host.startsWith("[") && host.endsWith("]")) return host.slice(1, -1);
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) ? host : null;
}

/**
 * Quotes one word for a POSIX shell: words of only safe characters stay as they are, all others
 * go in single quotes, inside which nothing is special except the quote itself.
 */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,.\/-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

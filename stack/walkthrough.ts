import { readFile } from "node:fs/promises";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Sql } from "postgres";

/**
 * Helpers shared by the narrated demo and the end-to-end test, which walk through the same
 * story: deploy a real MCP server, use it, break things around it, and read what Berth did.
 */

/** Connects to an MCP server over streamable HTTP and returns the names of its tools. */
export async function listMcpTools(endpoint: string): Promise<string[]> {
  const client = new Client({ name: "berth-walkthrough", version: "0.1.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(endpoint)));
  try {
    const { tools } = await client.listTools();
    return tools.map((tool) => tool.name);
  } finally {
    await client.close();
  }
}

/**
 * Polls `probe` until it returns a value other than undefined. The error on timeout names what
 * was expected and the last error the probe raised, so a failure explains itself.
 */
export async function waitUntil<T>(
  description: string,
  probe: () => Promise<T | undefined>,
  options: { timeoutMs: number; intervalMs?: number; onPoll?: () => void },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;

  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    options.onPoll?.();
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250));
  }

  const last = lastError instanceof Error ? `; last error: ${lastError.message}` : "";
  throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${description}${last}`);
}

export interface InstanceEvent {
  created_at: Date;
  from_status: string | null;
  to_status: string;
  actor: string;
  reason_code: string | null;
  message: string | null;
}

/** Reads an instance's events in order, the story of its status changes. */
export async function readInstanceEvents(sql: Sql, instanceId: string): Promise<InstanceEvent[]> {
  return sql<InstanceEvent[]>`
    select created_at, from_status::text, to_status::text, actor::text, reason_code, message
    from public.instance_events
    where instance_id = ${instanceId}
    order by id`;
}

/** Reads `KEY=value` lines as `npm start` writes them to `.berth/dev.env`. */
export async function readEnvFile(file: string): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const line of (await readFile(file, "utf8")).split("\n")) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match?.[1] !== undefined) values[match[1]] = match[2] ?? "";
  }
  return values;
}

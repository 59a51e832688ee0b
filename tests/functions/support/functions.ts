import type { Sql } from "postgres";
import { createAgentClientFactory, type AgentClientFactory } from "../../../supabase/functions/_shared/agents.ts";
import { createAuthenticator } from "../../../supabase/functions/_shared/auth.ts";
import { createSql } from "../../../supabase/functions/_shared/db.ts";
import { createLogger } from "../../../supabase/functions/_shared/log.ts";
import { createRegistry, type Registry } from "../../../supabase/functions/_shared/registry.ts";
import { createHeartbeatHandler } from "../../../supabase/functions/dtma-heartbeat/handler.ts";
import { createInstancesHandler } from "../../../supabase/functions/instances/handler.ts";
import { createToolboxesHandler } from "../../../supabase/functions/toolboxes/handler.ts";
import { LOCAL_JWT_SECRET } from "../../../stack/jwt.ts";

/** Agent token secret of the tests; every toolbox token in them is derived from it. */
export const TEST_AGENT_TOKEN_SECRET = "berth-test-agent-token-secret-0123456789abcdef";

export const TEST_CONTROL_PLANE_URL = "http://127.0.0.1:54321/functions/v1";

export type Handler = (request: Request) => Promise<Response>;

export interface FunctionsUnderTest {
  instances: Handler;
  toolboxes: Handler;
  heartbeat: Handler;
  registry: Registry;
  /** Every line the functions logged, as written. */
  logLines: string[];
  close(): Promise<void>;
}

export interface FunctionsOptions {
  databaseUrl: string;
  /** Agent client factory; the real one (derived tokens, HTTP) when absent. */
  agents?: AgentClientFactory;
  agentTimeoutMs?: number;
  leaseTtlSeconds?: number;
  /** BERTH_ALLOW_PRIVATE_AGENT_URLS; true by default, because the tests' agents listen on 127.0.0.1. */
  allowPrivateAgentUrls?: boolean;
}

/**
 * Builds the three handlers the way their index.ts does, on the test database, with the local
 * JWT secret and a logger that keeps its lines for the tests to search.
 */
export function createFunctions(options: FunctionsOptions): FunctionsUnderTest {
  const logLines: string[] = [];
  const logger = createLogger({}, (line) => logLines.push(line));
  const sql = createSql(options.databaseUrl);
  const registry = createRegistry(sql);
  const auth = createAuthenticator({ supabaseUrl: "http://127.0.0.1:54321", jwtSecret: LOCAL_JWT_SECRET });
  const allowPrivateAgentUrls = options.allowPrivateAgentUrls ?? true;
  const agents =
    options.agents ??
    createAgentClientFactory({ tokenSecret: TEST_AGENT_TOKEN_SECRET, timeoutMs: options.agentTimeoutMs ?? 8_000, allowPrivateAddresses: allowPrivateAgentUrls });

  return {
    instances: createInstancesHandler({ registry, auth, agents, logger, leaseTtlSeconds: options.leaseTtlSeconds ?? 30 }),
    toolboxes: createToolboxesHandler({
      registry,
      auth,
      logger,
      agentTokenSecret: TEST_AGENT_TOKEN_SECRET,
      controlPlaneUrl: TEST_CONTROL_PLANE_URL,
      allowPrivateAgentUrls,
    }),
    heartbeat: createHeartbeatHandler({ registry, logger, agentTokenSecret: TEST_AGENT_TOKEN_SECRET }),
    registry,
    logLines,
    close: () => sql.end({ timeout: 5 }),
  };
}

export interface CallOptions {
  token?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

/** Calls a handler with a real Request as Supabase would pass it (`/<function>/...`). */
export async function call(handler: Handler, method: string, path: string, options: CallOptions = {}): Promise<CallResult> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  }

  const response = await handler(new Request(`http://functions.local${path}`, { method, headers, body }));
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : JSON.parse(text), text, headers: response.headers };
}

/** Counts the rows a failed request must not have written. */
export async function countWrites(sql: Sql): Promise<Record<string, number>> {
  const [row] = await sql`
    select
      (select count(*)::int from public.tool_instances) as instances,
      (select count(*)::int from public.instance_events) as events,
      (select count(*)::int from public.toolboxes) as toolboxes,
      (select count(*)::int from berth_private.idempotency_keys) as idempotency_keys,
      (select count(*)::int from berth_private.instance_secrets) as secrets,
      (select coalesce(sum(version), 0)::int from public.tool_instances) as instance_versions`;
  return row as Record<string, number>;
}

/**
 * Gives a toolbox a random block of host ports below Linux's ephemeral range (32768 and up),
 * so test files that run at the same time on one engine rarely compete for a port.
 */
export async function isolatePortRange(sql: Sql, toolboxId: string, size = 40): Promise<void> {
  const start = 10_000 + Math.floor(Math.random() * 500) * size;
  await sql`update public.toolboxes set port_range_start = ${start}, port_range_end = ${start + size - 1} where id = ${toolboxId}`;
}

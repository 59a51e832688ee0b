import type { SupabaseClient } from "@supabase/supabase-js";
import type { Database, Tables } from "./database.types.ts";
import { BerthError } from "./errors.ts";

/**
 * An instance row as the owner reads it through the Data API. The lease holder and nonce are
 * left out because they prove an operation in progress and mean nothing to a reader.
 */
export type InstanceRow = Omit<Tables<"tool_instances">, "lease_holder" | "lease_nonce">;
export type ToolboxRow = Tables<"toolboxes">;
export type InstanceEventRow = Tables<"instance_events">;

// Column lists are spelled out so that supabase-js types each one against database.types.ts:
// a column renamed or dropped by a migration then fails `tsc` here instead of at run time.
const INSTANCE_COLUMNS =
  "id, owner_id, toolbox_id, name, image, command, env, secret_names, container_port, host_port, mcp_transport, mcp_path, memory_mb, cpus, desired_state, generation, spec_generation, status, status_reason_code, status_reason, status_changed_at, container_id, docker_state, exit_code, oom_killed, restart_count, health, observed_generation, started_at, finished_at, observed_at, restart_attempts, next_attempt_at, lease_expires_at, version, created_at, updated_at";
const TOOLBOX_COLUMNS =
  "id, owner_id, name, agent_url, agent_port, port_range_start, port_range_end, status, agent_version, last_heartbeat_at, consecutive_failures, last_failure, token_version, last_reconciled_at, reconcile_lease_holder, reconcile_lease_expires_at, created_at, updated_at";
const EVENT_COLUMNS = "id, instance_id, owner_id, toolbox_id, from_status, to_status, actor, reason_code, message, details, created_at";

/** Default and maximum number of events one read returns. */
export const DEFAULT_EVENT_LIMIT = 50;
export const MAX_EVENT_LIMIT = 1000;

export interface InstanceRowsQuery {
  toolboxId?: string;
  /** Include rows whose status is `removed`, which are left out by default. */
  includeRemoved?: boolean;
}

export interface EventRowsQuery {
  instanceId?: string;
  toolboxId?: string;
  /** Number of events, newest first: DEFAULT_EVENT_LIMIT when absent, at most MAX_EVENT_LIMIT. */
  limit?: number;
  /** Only events with an id below this one, to page back through history. */
  beforeId?: number;
}

/**
 * Reads of the registry tables through the Data API (PostgREST). Row level security limits every
 * result to the signed-in owner's rows, so no owner filter is sent.
 */
export interface TablesApi {
  instances(query?: InstanceRowsQuery): Promise<InstanceRow[]>;
  /** Returns the instance, or null when it does not exist or belongs to someone else. */
  instance(id: string): Promise<InstanceRow | null>;
  toolboxes(): Promise<ToolboxRow[]>;
  /** Returns status changes newest first. */
  events(query?: EventRowsQuery): Promise<InstanceEventRow[]>;
}

export function createTablesApi(supabase: SupabaseClient<Database>): TablesApi {
  return {
    async instances(query = {}) {
      let request = supabase.from("tool_instances").select(INSTANCE_COLUMNS).order("created_at").order("id");
      if (query.toolboxId !== undefined) request = request.eq("toolbox_id", query.toolboxId);
      if (!query.includeRemoved) request = request.neq("status", "removed");
      const { data, error, status } = await request;
      if (error) throw dataApiError("tool_instances", status, error);
      return data;
    },

    async instance(id) {
      const { data, error, status } = await supabase.from("tool_instances").select(INSTANCE_COLUMNS).eq("id", id).maybeSingle();
      if (error) throw dataApiError("tool_instances", status, error);
      return data;
    },

    async toolboxes() {
      const { data, error, status } = await supabase.from("toolboxes").select(TOOLBOX_COLUMNS).order("created_at").order("id");
      if (error) throw dataApiError("toolboxes", status, error);
      return data;
    },

    async events(query = {}) {
      const limit = eventLimit(query.limit);
      let request = supabase.from("instance_events").select(EVENT_COLUMNS).order("id", { ascending: false }).limit(limit);
      if (query.instanceId !== undefined) request = request.eq("instance_id", query.instanceId);
      if (query.toolboxId !== undefined) request = request.eq("toolbox_id", query.toolboxId);
      if (query.beforeId !== undefined) request = request.lt("id", query.beforeId);
      const { data, error, status } = await request;
      if (error) throw dataApiError("instance_events", status, error);
      return data;
    },
  };
}

function eventLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_EVENT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_EVENT_LIMIT) {
    throw new BerthError("invalid_request", 0, `invalid event limit ${limit}: use a whole number from 1 to ${MAX_EVENT_LIMIT}`);
  }
  return limit;
}

/**
 * Wraps a PostgREST error. postgrest-js returns PostgREST's `{code, message, details, hint}`,
 * or the parsed body of any other server that responded, such as a gateway without a Data API.
 */
function dataApiError(table: string, status: number, error: unknown): BerthError {
  const fields = (typeof error === "object" && error !== null ? error : {}) as Record<string, unknown>;
  const message = typeof fields.message === "string" && fields.message !== "" ? fields.message : JSON.stringify(error);
  const details = { postgrest_code: fields.code, details: fields.details, hint: fields.hint };
  return new BerthError("data_api_error", status, `reading ${table} through the Data API failed with HTTP ${status}: ${message}`, details);
}

import type { ReconcileRequest, ReconcileResponse } from "@berth/shared";
import type { SupabaseClient } from "@supabase/supabase-js";
import type { Database } from "./database.types.ts";
import { createInstancesApi, type InstancesApi } from "./instances.ts";
import { runReconcile } from "./reconcile.ts";
import { createTablesApi, type TablesApi } from "./tables.ts";
import { createToolboxesApi, type ToolboxesApi } from "./toolboxes.ts";
import { watchInstances, type InstanceChange, type Unsubscribe, type WatchOptions } from "./watch.ts";

export interface BerthClient {
  /** The edge function routes under `/functions/v1/toolboxes`. */
  toolboxes: ToolboxesApi;
  /** The edge function routes under `/functions/v1/instances`. */
  instances: InstancesApi;
  /** Row reads of `tool_instances`, `toolboxes` and `instance_events` through the Data API. */
  tables: TablesApi;
  /** Runs one reconciler pass. Needs a client built with the service role key. */
  reconcile(request?: ReconcileRequest): Promise<ReconcileResponse>;
  /** Delivers every change of the owner's `tool_instances` rows until the returned function is called. */
  watch(callback: (change: InstanceChange) => void, options?: WatchOptions): Unsubscribe;
}

/**
 * Wraps a supabase-js client with Berth's typed API. Calls go out with the client's credentials:
 * the signed-in user's session in a browser, or whatever key or `accessToken` it was built with.
 * Every failure is raised as a BerthError.
 */
export function createBerthClient(supabase: SupabaseClient<Database>): BerthClient {
  return {
    toolboxes: createToolboxesApi(supabase),
    instances: createInstancesApi(supabase),
    tables: createTablesApi(supabase),
    reconcile: (request) => runReconcile(supabase, request),
    watch: (callback, options) => watchInstances(supabase, callback, options),
  };
}

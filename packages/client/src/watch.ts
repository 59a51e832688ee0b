import type { RealtimePostgresChangesPayload, SupabaseClient } from "@supabase/supabase-js";
import type { Database, Tables } from "./database.types.ts";
import type { InstanceRow } from "./tables.ts";

/** One change of a `tool_instances` row as Supabase Realtime delivers it. */
export interface InstanceChange {
  type: "INSERT" | "UPDATE" | "DELETE";
  /** The row after the change; null for DELETE. */
  instance: InstanceRow | null;
  /**
   * The row before the change. With the table's default replica identity PostgreSQL sends only
   * the primary key here, so only `id` is certain to be present.
   */
  previous: Partial<InstanceRow> | null;
  /** When the change was committed, as an ISO 8601 timestamp. */
  commitTimestamp: string;
}

export type WatchStatus = "SUBSCRIBED" | "TIMED_OUT" | "CLOSED" | "CHANNEL_ERROR";

export interface WatchOptions {
  /** Only changes of instances on this toolbox. */
  toolboxId?: string;
  /** Only changes of this instance. Realtime takes one filter, so not together with toolboxId. */
  instanceId?: string;
  /** Called when the subscription is confirmed, times out, closes or fails. */
  onStatus?: (status: WatchStatus, error?: Error) => void;
}

/** Stops a watch and leaves its Realtime channel. */
export type Unsubscribe = () => Promise<void>;

/**
 * Subscribes to `postgres_changes` of `tool_instances`. Supabase Realtime applies the table's
 * select policy with the client's access token, so each owner receives only their own rows.
 */
export function watchInstances(supabase: SupabaseClient<Database>, callback: (change: InstanceChange) => void, options: WatchOptions = {}): Unsubscribe {
  if (options.toolboxId !== undefined && options.instanceId !== undefined) {
    throw new TypeError("watch takes toolboxId or instanceId, not both: Realtime applies one filter per subscription");
  }

  const filter = realtimeFilter(options);
  // A unique topic per call: supabase.channel() returns the existing channel for a known topic,
  // and bindings cannot be added to a channel that has already joined.
  const channel = supabase.channel(`berth-instances-${globalThis.crypto.randomUUID()}`);

  channel.on<Tables<"tool_instances">>(
    "postgres_changes",
    { event: "*", schema: "public", table: "tool_instances", ...(filter === undefined ? {} : { filter }) },
    (payload) => callback(toInstanceChange(payload)),
  );
  channel.subscribe((status, error) => options.onStatus?.(status as WatchStatus, error));

  return async () => {
    await supabase.removeChannel(channel);
  };
}

/** Builds the one `column=eq.value` filter that a Realtime subscription supports. */
function realtimeFilter(options: WatchOptions): string | undefined {
  if (options.instanceId !== undefined) return `id=eq.${options.instanceId}`;
  if (options.toolboxId !== undefined) return `toolbox_id=eq.${options.toolboxId}`;
  return undefined;
}

function toInstanceChange(payload: RealtimePostgresChangesPayload<Tables<"tool_instances">>): InstanceChange {
  const { lease_holder: _holder, lease_nonce: _nonce, ...after } = payload.new as Partial<Tables<"tool_instances">>;
  const { lease_holder: _oldHolder, lease_nonce: _oldNonce, ...before } = payload.old as Partial<Tables<"tool_instances">>;

  return {
    type: payload.eventType,
    instance: payload.eventType === "DELETE" ? null : (after as InstanceRow),
    previous: payload.eventType === "INSERT" ? null : before,
    commitTimestamp: payload.commit_timestamp,
  };
}

import {
  InstanceDeployRequest,
  InstanceEventsResponse,
  InstanceListResponse,
  InstanceLogsResponse,
  InstanceResponse,
  type InstanceEvent,
} from "@berth/shared";
import type { SupabaseClient } from "@supabase/supabase-js";
import { invokeFunction, parseRequest, segment } from "./invoke.ts";

/** The outcome of a call that changes an instance. */
export interface InstanceResult {
  instance: InstanceResponse;
  /**
   * True when the function returned 202: the intent is recorded but the agent has not finished
   * yet, so `instance` shows a transitional status and the reconciler completes the change.
   */
  inProgress: boolean;
}

export type InstanceAction = "start" | "stop" | "restart";

export interface DeployOptions {
  /** Sent as `Idempotency-Key`, so a retried deploy returns the first result instead of creating twice. */
  idempotencyKey?: string;
}

export interface InstanceEventsOptions {
  /** Number of newest events, from 1 to INSTANCE_EVENTS_MAX_LIMIT. The server returns INSTANCE_EVENTS_DEFAULT_LIMIT when absent. */
  limit?: number;
  /** Only events with an id below this one. Pass the id of a page's first event to read the page before it. */
  beforeId?: number;
}

/** Typed calls of the `instances` edge function. */
export interface InstancesApi {
  deploy(request: InstanceDeployRequest, options?: DeployOptions): Promise<InstanceResult>;
  /** Lists the caller's instances that are not removed, oldest first. */
  list(options?: { toolboxId?: string }): Promise<InstanceResponse[]>;
  get(id: string): Promise<InstanceResponse>;
  start(id: string): Promise<InstanceResult>;
  stop(id: string): Promise<InstanceResult>;
  restart(id: string): Promise<InstanceResult>;
  remove(id: string): Promise<InstanceResult>;
  logs(id: string, options?: { tail?: number }): Promise<InstanceLogsResponse>;
  /** Returns the newest status changes of an instance, oldest first. Removed instances keep theirs. */
  events(id: string, options?: InstanceEventsOptions): Promise<InstanceEvent[]>;
}

export function createInstancesApi(supabase: SupabaseClient<any, any, any>): InstancesApi {
  const act = async (id: string, action: InstanceAction): Promise<InstanceResult> => {
    const { data, status } = await invokeFunction(supabase, { path: `instances/${segment(id)}/${action}`, method: "POST" }, InstanceResponse);
    return { instance: data, inProgress: status === 202 };
  };

  return {
    async deploy(request, options = {}) {
      const body = parseRequest(InstanceDeployRequest, request, "deploy request");
      const headers = options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : undefined;
      const { data, status } = await invokeFunction(supabase, { path: "instances", method: "POST", body, headers }, InstanceResponse);
      return { instance: data, inProgress: status === 202 };
    },

    async list(options = {}) {
      const query = { toolbox_id: options.toolboxId };
      const { data } = await invokeFunction(supabase, { path: "instances", method: "GET", query }, InstanceListResponse);
      return data.instances;
    },

    async get(id) {
      const { data } = await invokeFunction(supabase, { path: `instances/${segment(id)}`, method: "GET" }, InstanceResponse);
      return data;
    },

    start: (id) => act(id, "start"),
    stop: (id) => act(id, "stop"),
    restart: (id) => act(id, "restart"),

    async remove(id) {
      const { data, status } = await invokeFunction(supabase, { path: `instances/${segment(id)}`, method: "DELETE" }, InstanceResponse);
      return { instance: data, inProgress: status === 202 };
    },

    async logs(id, options = {}) {
      const query = { tail: options.tail };
      const { data } = await invokeFunction(supabase, { path: `instances/${segment(id)}/logs`, method: "GET", query }, InstanceLogsResponse);
      return data;
    },

    async events(id, options = {}) {
      const query = { limit: options.limit, before_id: options.beforeId };
      const { data } = await invokeFunction(supabase, { path: `instances/${segment(id)}/events`, method: "GET", query }, InstanceEventsResponse);
      return data.events;
    },
  };
}

import { ToolboxCreateRequest, ToolboxCreateResponse, ToolboxListResponse, ToolboxResponse, ToolboxRotateTokenResponse } from "@berth/shared";
import type { SupabaseClient } from "@supabase/supabase-js";
import { invokeFunction, parseRequest, segment } from "./invoke.ts";

/** Typed calls of the `toolboxes` edge function. */
export interface ToolboxesApi {
  /** Registers a host. The response carries the agent token, which no later call returns. */
  create(request: ToolboxCreateRequest): Promise<ToolboxCreateResponse>;
  list(): Promise<ToolboxResponse[]>;
  get(id: string): Promise<ToolboxResponse>;
  /** Issues a new agent token. The previous one stops working. */
  rotateToken(id: string): Promise<ToolboxRotateTokenResponse>;
  /** Decommissions a toolbox. Raises `toolbox_not_empty` (409) while live instances remain. */
  decommission(id: string): Promise<ToolboxResponse>;
}

export function createToolboxesApi(supabase: SupabaseClient<any, any, any>): ToolboxesApi {
  return {
    async create(request) {
      const body = parseRequest(ToolboxCreateRequest, request, "toolbox request");
      const { data } = await invokeFunction(supabase, { path: "toolboxes", method: "POST", body }, ToolboxCreateResponse);
      return data;
    },

    async list() {
      const { data } = await invokeFunction(supabase, { path: "toolboxes", method: "GET" }, ToolboxListResponse);
      return data.toolboxes;
    },

    async get(id) {
      const { data } = await invokeFunction(supabase, { path: `toolboxes/${segment(id)}`, method: "GET" }, ToolboxResponse);
      return data;
    },

    async rotateToken(id) {
      const { data } = await invokeFunction(supabase, { path: `toolboxes/${segment(id)}/rotate-token`, method: "POST" }, ToolboxRotateTokenResponse);
      return data;
    },

    async decommission(id) {
      const { data } = await invokeFunction(supabase, { path: `toolboxes/${segment(id)}`, method: "DELETE" }, ToolboxResponse);
      return data;
    },
  };
}

import { createClient, type SupabaseClient, type WebSocketLikeConstructor } from "@supabase/supabase-js";
import WebSocket from "ws";
import type { Database } from "../database.types.ts";

/**
 * Builds a supabase-js client for Node that sends `token` as the Bearer credential of every
 * request. Node 20 has no global WebSocket and realtime-js 2.109 throws in `createClient`
 * without one, so `ws` is passed as the Realtime transport, as realtime-js suggests.
 */
export function createNodeSupabaseClient(url: string, apiKey: string, token: string): SupabaseClient<Database> {
  return createClient<Database>(url, apiKey, {
    accessToken: async () => token,
    // ws's constructor overloads do not match realtime-js's structural type, though it is the
    // implementation realtime-js names for Node.
    realtime: { transport: WebSocket as unknown as WebSocketLikeConstructor },
    global: { headers: { "x-client-info": "berth-cli" } },
  });
}

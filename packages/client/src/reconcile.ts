import { ReconcileRequest, ReconcileResponse } from "@berth/shared";
import type { SupabaseClient } from "@supabase/supabase-js";
import { invokeFunction, parseRequest } from "./invoke.ts";

/**
 * Runs one reconciler pass through `POST /reconcile`. The function accepts only service
 * credentials, so `supabase` must carry the service role key. A user token gets `forbidden`.
 */
export async function runReconcile(supabase: SupabaseClient<any, any, any>, request: ReconcileRequest = {}): Promise<ReconcileResponse> {
  const body = parseRequest(ReconcileRequest, request, "reconcile request");
  const { data } = await invokeFunction(supabase, { path: "reconcile", method: "POST", body }, ReconcileResponse);
  return data;
}

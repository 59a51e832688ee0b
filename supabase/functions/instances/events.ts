import { InstanceEventsRequest, type InstanceEventsResponse } from "@berth/shared";
import { json, parseInput } from "../_shared/http.ts";
import type { InstancesContext } from "./handler.ts";
import { eventResponse } from "./responses.ts";

/**
 * Returns the newest `limit` status changes of the caller's instance below `before_id`, oldest
 * first. Events of a removed instance stay readable by its id.
 */
export async function readEvents(request: Request, instanceId: string, context: InstancesContext): Promise<Response> {
  const query = parseInput(InstanceEventsRequest, Object.fromEntries(new URL(request.url).searchParams), "query");
  const { registry } = context.deps;
  const instance = await registry.getOwnedInstance(context.userId, instanceId);
  context.request.fields.toolbox_id = instance.toolbox_id;

  const rows = await registry.listOwnedInstanceEvents(context.userId, instanceId, { limit: query.limit, beforeId: query.before_id });

  const body: InstanceEventsResponse = { events: rows.map((row) => eventResponse(row)) };
  context.request.fields.outcome = "ok";
  return json(200, body);
}

import { z } from "zod";
import { HeartbeatRequest, ResourceId, type HeartbeatResponse } from "@berth/shared";
import { verifyAgentToken } from "../_shared/agent-token.ts";
import { bearerToken } from "../_shared/auth.ts";
import { ApiError } from "../_shared/errors.ts";
import { json, parseInput, readJsonValue, rejectUnstorableText, routeSegments } from "../_shared/http.ts";
import type { Logger } from "../_shared/log.ts";
import type { Registry, ToolboxRow } from "../_shared/registry.ts";
import { methodNotAllowed, routeNotFound, serveRoutes, type RequestContext } from "../_shared/request.ts";

export interface HeartbeatHandlerDependencies {
  registry: Registry;
  logger: Logger;
  /** BERTH_AGENT_TOKEN_SECRET, from which agent tokens are derived. */
  agentTokenSecret: string;
}

/**
 * Maximum heartbeat body in bytes. One observation is about 400 bytes of JSON, so this fits an
 * inventory of roughly 2500 containers (an estimate from the observation's field sizes).
 */
export const MAX_HEARTBEAT_BYTES = 1024 * 1024;

/** The part of a heartbeat read before the token is checked: the toolbox the agent claims to be. */
const HeartbeatSender = z.object({ toolbox_id: ResourceId });

/**
 * Creates the handler of `/functions/v1/dtma-heartbeat`, where agents push their inventory.
 * The caller proves itself with the token derived from the toolbox id and its current token
 * version. A wrong token gets 401 before anything is written.
 *
 * The toolbox id is in the body, so an unauthenticated caller costs at most reading
 * MAX_HEARTBEAT_BYTES, JSON.parse and one toolbox lookup. Only the agent of the toolbox gets
 * the body checked for unstorable text and validated against the heartbeat schema.
 */
export function createHeartbeatHandler(deps: HeartbeatHandlerDependencies): (request: Request) => Promise<Response> {
  return serveRoutes("dtma-heartbeat", deps.logger, async (request, context) => {
    if (routeSegments(request, "dtma-heartbeat").length > 0) routeNotFound(request);
    if (request.method !== "POST") methodNotAllowed(request, ["POST"]);

    const token = bearerToken(request);
    const body = await readJsonValue(request, MAX_HEARTBEAT_BYTES);
    const sender = parseInput(HeartbeatSender, body, "request body");
    context.fields.toolbox_id = sender.toolbox_id;
    const toolbox = await authenticateAgent(deps, sender.toolbox_id, token);

    rejectUnstorableText(body);
    const heartbeat = parseInput(HeartbeatRequest, body, "request body");
    return json(200, await recordHeartbeat(deps, toolbox, heartbeat, context));
  });
}

/** Returns the toolbox when `token` is its current agent token; anything else is 401. */
async function authenticateAgent(deps: HeartbeatHandlerDependencies, toolboxId: string, token: string): Promise<ToolboxRow> {
  const toolbox = await deps.registry.getToolbox(toolboxId);
  const valid = toolbox !== null && (await verifyAgentToken(deps.agentTokenSecret, toolbox.id, toolbox.token_version, token));

  // A missing toolbox gets the same 401 as a wrong token, so the endpoint does not reveal ids.
  if (!valid || toolbox === null) {
    throw new ApiError("unauthorized", "invalid agent token for this toolbox; use the token from the latest registration or rotation");
  }
  return toolbox;
}

/**
 * Records the contact (agent version, `unreachable` or `provisioning` becomes `active`) and the
 * inventory. Reports of containers without a live instance on this toolbox are ignored and logged.
 */
async function recordHeartbeat(deps: HeartbeatHandlerDependencies, toolbox: ToolboxRow, heartbeat: HeartbeatRequest, context: RequestContext): Promise<HeartbeatResponse> {
  const { registry } = deps;
  const updated = await registry.recordToolboxHeartbeat(toolbox.id, heartbeat.agent_version);

  const live = new Set((await registry.listToolboxInstances(toolbox.id)).map((row) => row.id));
  const ignored = heartbeat.instances.map((observation) => observation.instance_id.toLowerCase()).filter((id) => !live.has(id));
  if (ignored.length > 0) {
    context.log.warn("ignored reported containers without a live instance on this toolbox", { toolbox_id: toolbox.id, instance_ids: ignored });
  }

  // NOTE: instances left `unknown` by an unreachable period get fresh observations here, but their
  // status is set again only by the next operation or reconciler pass.
  const changed = await registry.recordInventory(toolbox.id, heartbeat.instances);
  context.fields.outcome = "recorded";
  context.fields.instances_reported = heartbeat.instances.length;
  context.fields.instances_changed = changed.length;
  context.fields.events = heartbeat.events.length;
  return { toolbox_id: toolbox.id, toolbox_status: updated.status, instances_changed: changed.length, ignored_instance_ids: ignored };
}

import { ResourceId, ToolboxCreateRequest, type ToolboxCreateResponse, type ToolboxListResponse } from "@berth/shared";
import { nonPublicHostRange } from "../_shared/agent-address.ts";
import { deriveAgentToken } from "../_shared/agent-token.ts";
import type { Authenticator } from "../_shared/auth.ts";
import { ApiError } from "../_shared/errors.ts";
import { json, parseInput, readJson, routeSegments } from "../_shared/http.ts";
import type { Logger } from "../_shared/log.ts";
import type { Registry, ToolboxRow } from "../_shared/registry.ts";
import { methodNotAllowed, routeNotFound, serveRoutes, type RequestContext } from "../_shared/request.ts";
import { installCommand, toolboxResponse } from "./responses.ts";

export interface ToolboxesHandlerDependencies {
  registry: Registry;
  auth: Authenticator;
  logger: Logger;
  /** BERTH_AGENT_TOKEN_SECRET, from which agent tokens are derived. */
  agentTokenSecret: string;
  /** Functions base URL the agent sends heartbeats to, `<SUPABASE_URL>/functions/v1`. */
  controlPlaneUrl: string;
  /** BERTH_ALLOW_PRIVATE_AGENT_URLS: whether agent URLs may name loopback, private or link-local addresses. */
  allowPrivateAgentUrls: boolean;
}

interface ToolboxesContext {
  deps: ToolboxesHandlerDependencies;
  userId: string;
  request: RequestContext;
}

/**
 * Creates the handler of `/functions/v1/toolboxes`: register, list, read, rotate the agent token
 * and decommission the caller's toolboxes. Another owner's toolbox returns 404.
 */
export function createToolboxesHandler(deps: ToolboxesHandlerDependencies): (request: Request) => Promise<Response> {
  return serveRoutes("toolboxes", deps.logger, async (request, context) => {
    const { userId } = await deps.auth.requireUser(request);
    context.fields.user_id = userId;
    return route(request, { deps, userId, request: context });
  });
}

async function route(request: Request, context: ToolboxesContext): Promise<Response> {
  const [id, action, ...rest] = routeSegments(request, "toolboxes");
  if (rest.length > 0) routeNotFound(request);

  if (id === undefined) {
    if (request.method === "GET") return listToolboxes(context);
    if (request.method === "POST") return createToolbox(request, context);
    methodNotAllowed(request, ["GET", "POST"]);
  }

  const toolboxId = parseInput(ResourceId, id, "toolbox id in the path", "id");
  context.request.fields.toolbox_id = toolboxId;

  if (action === undefined) {
    if (request.method === "GET") return getToolbox(toolboxId, context);
    if (request.method === "DELETE") return decommissionToolbox(toolboxId, context);
    methodNotAllowed(request, ["GET", "DELETE"]);
  }
  if (action === "rotate-token") {
    if (request.method === "POST") return rotateToken(toolboxId, context);
    methodNotAllowed(request, ["POST"]);
  }
  routeNotFound(request);
}

async function createToolbox(request: Request, context: ToolboxesContext): Promise<Response> {
  const body = await readJson(request, ToolboxCreateRequest);
  if (!context.deps.allowPrivateAgentUrls) rejectNonPublicAgentUrl(body.agent_url);
  const created = await context.deps.registry.createToolbox({
    ownerId: context.userId,
    name: body.name,
    agentUrl: body.agent_url,
    agentPort: agentPortOf(body.agent_url),
  });

  context.request.fields.toolbox_id = created.id;
  context.request.fields.outcome = "created";
  return json(201, await withToken(created, context.deps));
}

/**
 * Raises `invalid_request` for an agent URL whose host is an IP address outside the public
 * ranges, in any notation the URL parser normalizes (`0x7f000001` is 127.0.0.1), or `localhost`.
 * Other host names are resolved and checked by the agent client before each call.
 */
function rejectNonPublicAgentUrl(agentUrl: string): void {
  const range = nonPublicHostRange(new URL(agentUrl).hostname);
  if (range === null) return;

  const message = `must not point at a non-public address (${range}); the functions call agents only at public addresses unless BERTH_ALLOW_PRIVATE_AGENT_URLS=true is set on them`;
  throw new ApiError("invalid_request", `invalid request body: agent_url ${message}`, { fields: [{ field: "agent_url", message }] });
}

/** Returns the agent's port from its URL, or the scheme's default port when the URL has none. */
function agentPortOf(agentUrl: string): number {
  const url = new URL(agentUrl);
  if (url.port !== "") return Number(url.port);
  return url.protocol === "https:" ? 443 : 80;
}

async function listToolboxes(context: ToolboxesContext): Promise<Response> {
  const rows = await context.deps.registry.listOwnedToolboxes(context.userId);
  const body: ToolboxListResponse = { toolboxes: rows.map(toolboxResponse) };
  context.request.fields.outcome = "ok";
  return json(200, body);
}

async function getToolbox(toolboxId: string, context: ToolboxesContext): Promise<Response> {
  const row = await context.deps.registry.getOwnedToolbox(context.userId, toolboxId);
  context.request.fields.outcome = "ok";
  return json(200, toolboxResponse(row));
}

async function rotateToken(toolboxId: string, context: ToolboxesContext): Promise<Response> {
  const { registry } = context.deps;
  await registry.getOwnedToolbox(context.userId, toolboxId);
  const rotated = await registry.rotateToolboxToken(toolboxId);

  context.request.fields.token_version = rotated.token_version;
  context.request.fields.outcome = "rotated";
  return json(200, await withToken(rotated, context.deps));
}

/** Decommissions the toolbox; 409 `toolbox_not_empty` while it has instances that are not removed. */
async function decommissionToolbox(toolboxId: string, context: ToolboxesContext): Promise<Response> {
  const { registry } = context.deps;
  await registry.getOwnedToolbox(context.userId, toolboxId);
  const decommissioned = await registry.decommissionToolbox(toolboxId);

  context.request.fields.outcome = "decommissioned";
  return json(200, toolboxResponse(decommissioned));
}

async function withToken(toolbox: ToolboxRow, deps: ToolboxesHandlerDependencies): Promise<ToolboxCreateResponse> {
  const token = await deriveAgentToken(deps.agentTokenSecret, toolbox.id, toolbox.token_version);
  return { toolbox: toolboxResponse(toolbox), agent_token: token, install_command: installCommand(toolbox, token, deps.controlPlaneUrl) };
}

import { ResourceId, type InstanceListResponse } from "@berth/shared";
import type { AgentClientFactory } from "../_shared/agents.ts";
import type { Authenticator } from "../_shared/auth.ts";
import { createInstanceDriver, type InstanceDriver } from "../_shared/driver.ts";
import { json, parseInput, routeSegments } from "../_shared/http.ts";
import type { Logger } from "../_shared/log.ts";
import type { Registry } from "../_shared/registry.ts";
import { methodNotAllowed, routeNotFound, serveRoutes, type RequestContext } from "../_shared/request.ts";
import { runAction, readLogs, type InstanceAction } from "./actions.ts";
import { deployInstance } from "./deploy.ts";
import { readEvents } from "./events.ts";
import { instanceResponse } from "./responses.ts";

export interface InstancesHandlerDependencies {
  registry: Registry;
  auth: Authenticator;
  agents: AgentClientFactory;
  logger: Logger;
  /** Lease length for one operation (BERTH_LEASE_TTL_SECONDS); must exceed the agent timeout. */
  leaseTtlSeconds: number;
}

/** Dependencies and caller shared by the route modules of this function. */
export interface InstancesContext {
  deps: InstancesHandlerDependencies;
  driver: InstanceDriver;
  userId: string;
  request: RequestContext;
}

const ACTIONS = new Set<string>(["start", "stop", "restart"]);

/**
 * Creates the handler of `/functions/v1/instances`: deploy, list, read, start, stop, restart,
 * remove, logs and events of the caller's instances. Another owner's instance returns 404.
 */
export function createInstancesHandler(deps: InstancesHandlerDependencies): (request: Request) => Promise<Response> {
  return serveRoutes("instances", deps.logger, async (request, context) => {
    const { userId } = await deps.auth.requireUser(request);
    context.fields.user_id = userId;

    const driver = createInstanceDriver({ registry: deps.registry, agents: deps.agents, leaseTtlSeconds: deps.leaseTtlSeconds, logger: context.log });
    const shared: InstancesContext = { deps, driver, userId, request: context };
    return route(request, shared);
  });
}

async function route(request: Request, context: InstancesContext): Promise<Response> {
  const [id, action, ...rest] = routeSegments(request, "instances");
  if (rest.length > 0) routeNotFound(request);

  if (id === undefined) {
    if (request.method === "GET") return listInstances(request, context);
    if (request.method === "POST") return deployInstance(request, context);
    methodNotAllowed(request, ["GET", "POST"]);
  }

  const instanceId = parseInput(ResourceId, id, "instance id in the path", "id");
  context.request.fields.instance_id = instanceId;

  if (action === undefined) {
    if (request.method === "GET") return getInstance(instanceId, context);
    if (request.method === "DELETE") return runAction(instanceId, "remove", context);
    methodNotAllowed(request, ["GET", "DELETE"]);
  }
  if (ACTIONS.has(action)) {
    if (request.method === "POST") return runAction(instanceId, action as InstanceAction, context);
    methodNotAllowed(request, ["POST"]);
  }
  if (action === "logs") {
    if (request.method === "GET") return readLogs(request, instanceId, context);
    methodNotAllowed(request, ["GET"]);
  }
  if (action === "events") {
    if (request.method === "GET") return readEvents(request, instanceId, context);
    methodNotAllowed(request, ["GET"]);
  }
  routeNotFound(request);
}

async function listInstances(request: Request, context: InstancesContext): Promise<Response> {
  const toolboxParam = new URL(request.url).searchParams.get("toolbox_id");
  const toolboxId = toolboxParam === null ? undefined : parseInput(ResourceId, toolboxParam, "toolbox_id query parameter", "toolbox_id");

  const { registry } = context.deps;
  const [rows, toolboxes] = await Promise.all([
    registry.listOwnedInstances(context.userId, { toolboxId }),
    registry.listOwnedToolboxes(context.userId),
  ]);
  const byId = new Map(toolboxes.map((toolbox) => [toolbox.id, toolbox]));

  const body: InstanceListResponse = {
    instances: rows.flatMap((row) => {
      const toolbox = byId.get(row.toolbox_id);
      return toolbox === undefined ? [] : [instanceResponse(row, toolbox)];
    }),
  };
  context.request.fields.outcome = "ok";
  return json(200, body);
}

async function getInstance(instanceId: string, context: InstancesContext): Promise<Response> {
  const { registry } = context.deps;
  const row = await registry.getOwnedInstance(context.userId, instanceId);
  const toolbox = await registry.getOwnedToolbox(context.userId, row.toolbox_id);

  context.request.fields.toolbox_id = toolbox.id;
  context.request.fields.outcome = "ok";
  return json(200, instanceResponse(row, toolbox));
}

import { InstanceLogsRequest, type DesiredState, type InstanceLogsResponse, type ReasonCode } from "@berth/shared";
import { AgentCallError } from "../_shared/dtma-client.ts";
import type { DriveAction, DriveResult } from "../_shared/driver.ts";
import { ApiError } from "../_shared/errors.ts";
import { json, parseInput } from "../_shared/http.ts";
import type { InstanceRow, Registry, ToolboxRow } from "../_shared/registry.ts";
import type { InstancesContext } from "./handler.ts";
import { instanceResponse } from "./responses.ts";
import { redactSecretValues } from "../_shared/redact.ts";

export type InstanceAction = "start" | "stop" | "restart" | "remove";

interface ActionPlan {
  desiredState: DesiredState;
  reason: ReasonCode;
  drive: DriveAction;
}

const PLANS: Readonly<Record<InstanceAction, ActionPlan>> = {
  start: { desiredState: "running", reason: "StartRequested", drive: "start" },
  stop: { desiredState: "stopped", reason: "StopRequested", drive: "stop" },
  restart: { desiredState: "running", reason: "RestartRequested", drive: "restart" },
  remove: { desiredState: "removed", reason: "RemoveRequested", drive: "remove" },
};

/** How often intent is recorded again after a concurrent write moved the row's version. */
const INTENT_ATTEMPTS = 3;

/**
 * Records the owner's intent, then drives the instance under a lease. Returns 200 with the row
 * when the agent finished and 202 when its call timed out, so the reconciler finishes the job.
 * Raises 409 `lease_held`, with nothing written, while another operation holds the instance.
 */
export async function runAction(instanceId: string, action: InstanceAction, context: InstancesContext): Promise<Response> {
  const { registry } = context.deps;
  const current = await registry.getOwnedInstance(context.userId, instanceId);
  const toolbox = await registry.getOwnedToolbox(context.userId, current.toolbox_id);
  context.request.fields.toolbox_id = toolbox.id;
  context.request.fields.action = action;

  if (action === "remove" && current.status === "removed") {
    context.request.fields.outcome = "done";
    return json(200, instanceResponse(current, toolbox));
  }

  const plan = PLANS[action];
  const intended = await recordIntent(registry, current, plan.desiredState);
  const result = await context.driver.drive(intended, toolbox, {
    action: plan.drive,
    actor: "user",
    holder: `user:${context.request.operationId}`,
    reason: plan.reason,
  });
  return driveResponse(result, toolbox, 200, context);
}

/**
 * Records intent at the version just read. A write in between (an agent report, a lease) moves
 * the version, so the row is read again and the intent retried. A lease that became visible
 * meanwhile stops the request with 409 before anything is written.
 */
async function recordIntent(registry: Registry, row: InstanceRow, desiredState: DesiredState): Promise<InstanceRow> {
  let current = row;
  for (let attempt = 1; ; attempt += 1) {
    rejectWhileLeased(current);
    try {
      return await registry.recordIntent(current.id, current.version, desiredState);
    } catch (error) {
      const retry = error instanceof ApiError && error.code === "version_conflict" && attempt < INTENT_ATTEMPTS;
      if (!retry) throw error;
      current = (await registry.getInstance(current.id)) ?? current;
    }
  }
}

/**
 * Raises 409 `lease_held` while another operation's lease is unexpired.
 * NOTE: this compares with the function's clock, while the claim uses the database clock. With
 * skew, a request can pass this check and meet the lease at the claim, and then the intent it
 * recorded is carried out by the lease holder's follow-up step.
 */
function rejectWhileLeased(row: InstanceRow): void {
  if (row.lease_expires_at !== null && new Date(row.lease_expires_at).getTime() > Date.now()) {
    throw new ApiError("lease_held", `instance ${row.id} is busy with another operation until ${new Date(row.lease_expires_at).toISOString()}; retry after that`, {
      lease_expires_at: new Date(row.lease_expires_at).toISOString(),
    });
  }
}

/** Turns a drive result into the response: `successStatus` when done, 202 in progress, the agent's error otherwise. */
export function driveResponse(result: DriveResult, toolbox: ToolboxRow, successStatus: number, context: InstancesContext): Response {
  context.request.fields.outcome = result.outcome;
  context.request.fields.instance_status = result.instance.status;
  const body = instanceResponse(result.instance, toolbox);

  if (result.outcome === "done") return json(successStatus, body);
  if (result.outcome === "in_progress") return json(202, body);

  context.request.fields.outcome = result.error.code;
  const details = typeof result.error.details === "object" && result.error.details !== null ? result.error.details : {};
  throw new ApiError(result.error.code, result.error.message, { ...details, instance: body });
}

/** Returns the last log lines from the agent. A host without the container returns no lines. */
export async function readLogs(request: Request, instanceId: string, context: InstancesContext): Promise<Response> {
  const query = parseInput(InstanceLogsRequest, Object.fromEntries(new URL(request.url).searchParams), "query");
  const { registry } = context.deps;
  const row = await registry.getOwnedInstance(context.userId, instanceId);
  const toolbox = await registry.getOwnedToolbox(context.userId, row.toolbox_id);
  context.request.fields.toolbox_id = toolbox.id;

  const client = await context.deps.agents(toolbox);
  let body: InstanceLogsResponse;
  try {
    const logs = await client.logs(instanceId, query.tail);
    const secrets = Object.values(await registry.instanceSecretValues(instanceId));
    const lines = logs.lines.map((line) => ({ ...line, text: redactSecretValues(line.text, secrets) }));
    body = { instance_id: instanceId, container_id: logs.container_id, lines };
  } catch (error) {
    if (!(error instanceof AgentCallError)) throw error;
    if (error.agentCode !== "instance_not_found") throw logsError(error, context);
    body = { instance_id: instanceId, container_id: null, lines: [] };
  }
  context.request.fields.outcome = "ok";
  return json(200, body);
}

function logsError(error: AgentCallError, context: InstancesContext): ApiError {
  context.request.log.warn("agent call for logs failed", { instance_id: context.request.fields.instance_id, failure: error.failure, agent_code: error.agentCode, error: error.message });
  if (error.failure === "unreachable") return new ApiError("agent_unreachable", error.message);
  return new ApiError("agent_error", error.message, { failure: error.failure, agent_code: error.agentCode ?? null });
}

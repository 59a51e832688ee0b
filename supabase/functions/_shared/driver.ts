import type { EventActor, InstanceObservation, ReasonCode } from "@berth/shared";
import type { AgentClientFactory } from "./agents.ts";
import { performAction, type Step } from "./driver-actions.ts";
import { AgentCallError, type DtmaClient } from "./dtma-client.ts";
import {
  actionFor,
  alignAction,
  reachableStatus,
  REQUEST_REASON,
  settledStatus,
  transitionalStatus,
  type DriveAction,
  type Settled,
} from "./driver-status.ts";
import { ApiError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { InstanceRow, Registry, ToolboxRow } from "./registry.ts";

export type { DriveAction } from "./driver-status.ts";

/**
 * Drives one instance towards its intent under a lease: claim the lease, show a transitional
 * status, call the agent, record the observation, set the final status with its reason,
 * release. The user API and the reconciler share it; they differ in actor and reason codes.
 * The transitional status carries the cause (the request, or the drift a repair found) and the
 * final status the outcome, such as ContainerRunning.
 *
 * Outcomes:
 * - `done`: the agent call succeeded and the row has its final status.
 * - `in_progress`: an agent call timed out, so its outcome is unknown. The row keeps the
 *   transitional status and the lease is left to expire; the reconciler finishes the job.
 * - `failed`: the agent rejected the request or could not be reached. For instance-level
 *   rejections (`image_not_found`, `invalid_request`, and `port_in_use` once the instance moved
 *   host ports MAX_PORT_MOVES times) the row is `failed`. For agent-level failures (unreachable,
 *   5xx, 401, invalid response) the row keeps its transitional status with reason `AgentError`,
 *   so the reconciler drives it again. Either way the lease is released.
 *
 * A 409 `lease_held` from the first claim propagates: another operation is driving the instance.
 * So does a 409 `version_conflict` when `expectedVersion` is set and the row moved past it.
 */
export interface DriveRequest {
  action: DriveAction;
  actor: EventActor;
  /** Lease holder, unique per operation, such as `user:<request id>` or `reconciler:<run id>`. */
  holder: string;
  /** Reason recorded with the transitional status, such as `StartRequested` or `ContainerExited`. */
  reason: ReasonCode;
  message?: string;
  /**
   * Puts `reason` on the final status as well when the step writes no transitional status (the
   * row already shows it, or none is reachable), so the step's only event names the cause.
   * Otherwise the final status carries the outcome, such as ContainerRunning.
   */
  reasonWithoutTransition?: boolean;
  /** Version the caller planned from. The first lease claim raises `version_conflict` once the row moved past it. */
  expectedVersion?: number;
  /** For `deploy`: move the instance to another free host port before sending the spec, for one that failed with PortInUse. */
  movePort?: boolean;
  /** Runs once the first lease is held, before any agent call, for bookkeeping such as record_restart_attempt. */
  onLeased?: (instance: InstanceRow, nonce: string) => Promise<void>;
}

export type DriveResult =
  | { outcome: "done"; instance: InstanceRow }
  | { outcome: "in_progress"; instance: InstanceRow }
  | { outcome: "failed"; instance: InstanceRow; error: ApiError };

export interface InstanceDriver {
  drive(instance: InstanceRow, toolbox: ToolboxRow, request: DriveRequest): Promise<DriveResult>;
}

export interface DriverDependencies {
  registry: Registry;
  agents: AgentClientFactory;
  /** Lease length in seconds (BERTH_LEASE_TTL_SECONDS); must exceed one agent call's timeout. */
  leaseTtlSeconds: number;
  logger: Logger;
  /** Steps per drive: the requested one plus follow-ups for intent recorded meanwhile. Default 3. */
  maxSteps?: number;
}

/** Creates the driver. */
export function createInstanceDriver(deps: DriverDependencies): InstanceDriver {
  return {
    drive: async (instance, toolbox, request) => {
      const client = await deps.agents(toolbox);
      const log = deps.logger.child({ instance_id: instance.id, toolbox_id: toolbox.id, lease_holder: request.holder });
      return driveSteps(deps, client, log, instance, request);
    },
  };
}

/**
 * Runs the requested step, then one more step per intent that another request recorded while
 * this one held the lease (that request got 409 `lease_held`), so the final status follows the
 * last accepted intent.
 */
async function driveSteps(deps: DriverDependencies, client: DtmaClient, log: Logger, instance: InstanceRow, request: DriveRequest): Promise<DriveResult> {
  let result = await runStep(deps, client, log, instance.id, request);

  for (let step = 1; step < (deps.maxSteps ?? 3) && result.outcome === "done"; step += 1) {
    const next = await followUp(deps.registry, result.drivenGeneration, instance.id);
    if (next === null) break;

    // A spec change recorded meanwhile (a new secret value, say) needs the whole spec sent again.
    const specCurrent = next.observed_generation === next.spec_generation;
    const action = specCurrent || next.desired_state === "removed" ? actionFor(next.desired_state) : "deploy";
    const followUpRequest: DriveRequest = {
      ...request,
      action,
      reason: REQUEST_REASON[next.desired_state],
      message: undefined,
      onLeased: undefined,
      expectedVersion: undefined,
      movePort: false,
    };
    try {
      result = await runStep(deps, client, log, instance.id, followUpRequest);
    } catch (error) {
      // Another operation took the lease after this one released it; that one drives now.
      if (error instanceof ApiError && error.code === "lease_held") return { outcome: "done", instance: next };
      throw error;
    }
  }
  return result.result;
}

/** Returns the row when intent newer than `drivenGeneration` is not yet met, else null. */
async function followUp(registry: Registry, drivenGeneration: number, instanceId: string): Promise<InstanceRow | null> {
  const row = await registry.getInstance(instanceId);
  if (row === null || row.status === "removed" || row.generation <= drivenGeneration) return null;

  const specCurrent = row.observed_generation === row.spec_generation;
  const statusMet = row.status === row.desired_state;
  return statusMet && (specCurrent || row.desired_state === "removed") ? null : row;
}

interface StepResult {
  outcome: DriveResult["outcome"];
  result: DriveResult;
  /** Generation of the intent this step served, plus the spec bumps the step made itself. */
  drivenGeneration: number;
}

async function runStep(deps: DriverDependencies, client: DtmaClient, log: Logger, instanceId: string, request: DriveRequest): Promise<StepResult> {
  const claimed = request.expectedVersion === undefined
    ? await deps.registry.claimInstanceLease(instanceId, request.holder, deps.leaseTtlSeconds)
    : await deps.registry.claimInstanceLeaseAtVersion(instanceId, request.expectedVersion, request.holder, deps.leaseTtlSeconds);
  const action = alignAction(request.action, claimed);
  const reason = action === request.action ? request.reason : REQUEST_REASON[claimed.desired_state];
  const step: Step = {
    deps,
    client,
    log,
    request,
    action,
    nonce: claimed.lease_nonce ?? "",
    row: claimed,
    drivenGeneration: claimed.generation,
    cause: reason,
    causeShown: false,
    portMoves: [],
  };

  try {
    await request.onLeased?.(claimed, step.nonce);
    await enterTransitional(step, reason, action === request.action ? request.message : undefined);
    const result = await callAgent(step);
    return { outcome: result.outcome, result, drivenGeneration: step.drivenGeneration };
  } catch (error) {
    await releaseQuietly(step);
    throw error;
  }
}

async function enterTransitional(step: Step, reason: ReasonCode, message: string | undefined): Promise<void> {
  const status = transitionalStatus(step.action, step.row.status);
  if (status === null) return;

  step.causeShown = status !== step.row.status;
  step.row = await step.deps.registry.setInstanceStatus(step.nonce, {
    instanceId: step.row.id,
    status,
    reasonCode: reason,
    message: message ?? null,
    actor: step.request.actor,
    details: { action: step.action },
  });
}

/** Calls the agent for the step's action and settles the row, or handles the agent's failure. */
async function callAgent(step: Step): Promise<DriveResult> {
  try {
    const outcome = await performAction(step);
    return await settle(step, outcome.observation, outcome.reasonCode, outcome.message);
  } catch (error) {
    if (error instanceof AgentCallError) return handleAgentFailure(step, error);
    throw error;
  }
}

/** Records the observation, sets the final status and releases the lease. */
async function settle(step: Step, observation: InstanceObservation | null, reasonCode?: ReasonCode, message?: string): Promise<DriveResult> {
  const registry = step.deps.registry;
  if (step.action !== "remove") await registry.recordObservation(step.row.toolbox_id, step.row.id, observation);

  const settled = settledStatus(step.action === "remove" ? "removed" : step.row.desired_state, observation);
  const useOverride = settled.status !== "failed";
  const unshownCause = step.request.reasonWithoutTransition && !step.causeShown ? step.cause : undefined;
  const final: Settled = {
    status: reachableStatus(step.row.status, settled.status),
    reasonCode: useOverride ? (reasonCode ?? unshownCause ?? settled.reasonCode) : settled.reasonCode,
    message: useOverride && message !== undefined ? message : settled.message,
  };

  step.row = await writeFinalStatus(step, final);
  await registry.releaseInstanceLease(step.row.id, step.nonce);
  return { outcome: "done", instance: withoutLease(step.row) };
}

/** Writes the final status. Its event lists the host ports the step moved through, if any. */
async function writeFinalStatus(step: Step, final: Settled, extra: Record<string, unknown> = {}): Promise<InstanceRow> {
  const moves = step.portMoves.length === 0 ? {} : { host_port_moves: step.portMoves };
  return step.deps.registry.setInstanceStatus(step.nonce, {
    instanceId: step.row.id,
    status: final.status,
    reasonCode: final.reasonCode,
    message: final.message,
    actor: step.request.actor,
    details: { action: step.action, ...moves, ...extra },
  });
}

/** Rejections that concern this instance's spec; the instance is marked failed. */
const INSTANCE_REJECTIONS: Readonly<Record<string, ReasonCode>> = {
  image_not_found: "ImageNotFound",
  port_in_use: "PortInUse",
  invalid_request: "AgentError",
  conflict: "AgentError",
};

async function handleAgentFailure(step: Step, error: AgentCallError): Promise<DriveResult> {
  const fields = { action: step.action, failure: error.failure, agent_code: error.agentCode, http_status: error.httpStatus, error: error.message };

  if (error.failure === "timeout") {
    step.log.warn("agent call timed out; leaving the transitional status and the lease to expire", fields);
    return { outcome: "in_progress", instance: withoutLease(step.row) };
  }

  step.log.warn("agent call failed", fields);
  const rejection = error.failure === "rejected" && error.agentCode !== undefined ? INSTANCE_REJECTIONS[error.agentCode] : undefined;
  const final: Settled = rejection === undefined
    ? { status: step.row.status, reasonCode: "AgentError", message: truncate(error.message) }
    : { status: reachableStatus(step.row.status, "failed"), reasonCode: rejection, message: truncate(failureMessage(step, error)) };

  step.row = await writeFinalStatus(step, final, { agent_code: error.agentCode ?? error.failure });
  await step.deps.registry.releaseInstanceLease(step.row.id, step.nonce);
  return { outcome: "failed", instance: withoutLease(step.row), error: apiErrorFor(error) };
}

/** Returns the agent's message, plus the host ports tried when the step moved the instance. */
function failureMessage(step: Step, error: AgentCallError): string {
  if (step.portMoves.length === 0) return error.message;
  const tried = [step.portMoves[0]!.from, ...step.portMoves.map((move) => move.to)];
  return `${error.message} Host ports tried: ${tried.join(", ")}.`;
}

/** Maps an agent failure to the error the API returns for it. */
function apiErrorFor(error: AgentCallError): ApiError {
  if (error.failure === "unreachable") return new ApiError("agent_unreachable", error.message);
  if (error.agentCode === "image_not_found" || error.agentCode === "port_in_use") return new ApiError(error.agentCode, error.message);
  return new ApiError("agent_error", error.message, { failure: error.failure, agent_code: error.agentCode ?? null, agent_status: error.httpStatus ?? null });
}

async function releaseQuietly(step: Step): Promise<void> {
  try {
    await step.deps.registry.releaseInstanceLease(step.row.id, step.nonce);
  } catch (error) {
    step.log.warn("could not release the lease after a failed step; it expires on its own", { error: String(error) });
  }
}

/** Shortens an agent message for status_reason, whose column allows at most 4096 characters. */
function truncate(message: string): string {
  return message.length > 1000 ? `${message.slice(0, 1000)}…` : message;
}

/** Returns the row without the lease nonce, which proves the lease and must not leave the driver. */
function withoutLease(row: InstanceRow): InstanceRow {
  return { ...row, lease_nonce: null };
}

import { isTransitionAllowed, type InstanceObservation, type ReasonCode } from "@berth/shared";
import { AgentCallError, type DtmaClient } from "./dtma-client.ts";
import type { DriveAction, DriverDependencies, DriveRequest } from "./driver.ts";
import { ApiError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { InstanceRow } from "./registry.ts";
import { loadEnsureRequest } from "./spec.ts";

/**
 * The agent calls of one driver step: the action itself, and the recovery when the host lost
 * the container or another program uses its host port. Both recoveries send the whole spec
 * again, and a taken port first moves the instance to another free port of its toolbox.
 */

/** Host port moves per step before the step fails with PortInUse. */
export const MAX_PORT_MOVES = 5;

/** Everything one step needs after the lease is claimed. */
export interface Step {
  deps: DriverDependencies;
  client: DtmaClient;
  log: Logger;
  request: DriveRequest;
  action: DriveAction;
  nonce: string;
  row: InstanceRow;
  drivenGeneration: number;
  /** Reason of the transitional status; the cause of the step. */
  cause: ReasonCode;
  /** Whether the step wrote a status change of its own before the final one, so its cause has an event. */
  causeShown: boolean;
  /** Host ports the step moved the instance away from and to, oldest first. */
  portMoves: { from: number; to: number }[];
}

export interface ActionOutcome {
  observation: InstanceObservation | null;
  /** Reason of the final status when the step met a cause that no event of the step shows. */
  reasonCode?: ReasonCode;
  message?: string;
}

/** Runs the agent calls of the step's action and returns the observation they end with. */
export async function performAction(step: Step): Promise<ActionOutcome> {
  const id = step.row.id;
  switch (step.action) {
    case "deploy":
      if (step.request.movePort) await tryMoveHostPort(step);
      return { observation: await ensureMovingPort(step) };
    case "start":
      return withRecovery(step, () => step.client.start(id));
    case "restart":
      return withRecovery(step, () => step.client.restart(id));
    case "stop":
      return stopContainer(step);
    case "remove":
      await step.client.remove(id);
      return { observation: null };
  }
}

/**
 * Runs a start or restart. The agent returns 404 `instance_not_found` when the container is
 * gone (removed by hand, host rebuilt), and 409 `port_in_use` when another program took its
 * host port. Either way the row's spec recreates the container, on another port for the second.
 */
async function withRecovery(step: Step, call: () => Promise<InstanceObservation>): Promise<ActionOutcome> {
  try {
    return { observation: await call() };
  } catch (error) {
    if (isRejection(error, "instance_not_found")) {
      step.log.info("container missing on the host, recreating it from the spec", { action: step.action });
      await renewLease(step);
      return recreate(step, "ContainerMissing", "The container was missing on the host; recreating it from the spec.");
    }
    if (!isRejection(error, "port_in_use")) throw error;

    await moveHostPortOrFail(step, error as AgentCallError);
    const move = step.portMoves[step.portMoves.length - 1]!;
    return recreate(step, "PortInUse", `Host port ${move.from} is in use on the host; recreating the container on port ${move.to}.`);
  }
}

/**
 * Sends the spec to recreate the container. The cause goes on a `deploying` event when that
 * status is reachable, and otherwise on the final status, so some event of the step names it.
 */
async function recreate(step: Step, cause: ReasonCode, message: string): Promise<ActionOutcome> {
  const shown = await showCause(step, cause, message);
  const observation = await ensureMovingPort(step);
  return shown ? { observation } : { observation, reasonCode: cause, message };
}

async function showCause(step: Step, cause: ReasonCode, message: string): Promise<boolean> {
  if (step.row.status === "deploying" || !isTransitionAllowed(step.row.status, "deploying")) return false;

  step.row = await step.deps.registry.setInstanceStatus(step.nonce, {
    instanceId: step.row.id,
    status: "deploying",
    reasonCode: cause,
    message,
    actor: step.request.actor,
    details: { action: step.action },
  });
  step.causeShown = true;
  return true;
}

/** Stops the container. A missing container already is the state a stop requests. */
async function stopContainer(step: Step): Promise<ActionOutcome> {
  try {
    return { observation: await step.client.stop(step.row.id) };
  } catch (error) {
    if (!isRejection(error, "instance_not_found")) throw error;
    return { observation: null };
  }
}

/**
 * Sends the spec (PUT). On `port_in_use` the instance moves to another free host port of its
 * toolbox, which is a spec change, and the spec is sent again. After MAX_PORT_MOVES moves in
 * the step, the next `port_in_use` fails it. On `conflict` (the host runs a newer generation
 * than the row) the container is adopted.
 */
async function ensureMovingPort(step: Step): Promise<InstanceObservation> {
  for (;;) {
    try {
      return await step.client.ensure(step.row.id, await loadEnsureRequest(step.deps.registry, step.row));
    } catch (error) {
      if (isRejection(error, "conflict")) return adoptObservation(step, error as AgentCallError);
      if (!isRejection(error, "port_in_use") || step.portMoves.length >= MAX_PORT_MOVES) throw error;
      await moveHostPortOrFail(step, error as AgentCallError);
    }
  }
}

/**
 * Moves the instance to another free host port, or rethrows the agent's `port_in_use` when the
 * toolbox has no free port left, so the step fails with PortInUse instead of leaving the row
 * in its transitional status.
 */
async function moveHostPortOrFail(step: Step, rejection: AgentCallError): Promise<void> {
  if (await tryMoveHostPort(step)) return;
  throw new AgentCallError(rejection.failure, `${rejection.message} No other host port of the toolbox is free.`, rejection.agentCode, rejection.httpStatus);
}

/**
 * Moves the leased instance to another free host port of its toolbox, which bumps the spec
 * generation, and renews the lease. Returns false when every port of the toolbox is taken.
 */
async function tryMoveHostPort(step: Step): Promise<boolean> {
  const previousPort = step.row.host_port;
  try {
    step.row = await step.deps.registry.reallocateHostPort(step.row.id, step.nonce);
  } catch (error) {
    if (!(error instanceof ApiError && error.code === "ports_exhausted")) throw error;
    step.log.warn("no free host port left to move the instance to", { host_port: previousPort, error: error.message });
    return false;
  }

  step.drivenGeneration += 1;
  step.portMoves.push({ from: previousPort, to: step.row.host_port });
  step.log.warn("moved the instance to another host port", { previous_host_port: previousPort, host_port: step.row.host_port });
  await renewLease(step);
  return true;
}

/** Takes the observation of the container the host already runs, from the agent's inventory. */
async function adoptObservation(step: Step, conflict: AgentCallError): Promise<InstanceObservation> {
  const inventory = await step.client.inventory();
  const observation = inventory.instances.find((candidate) => candidate.instance_id.toLowerCase() === step.row.id.toLowerCase());
  if (observation === undefined) throw conflict;
  step.log.info("adopted the container the host runs", { container_id: observation.container_id, generation: observation.generation });
  return observation;
}

/** Claims the lease again before another agent call, so a long step does not outlive it. */
export async function renewLease(step: Step): Promise<void> {
  const renewed = await step.deps.registry.claimInstanceLease(step.row.id, step.request.holder, step.deps.leaseTtlSeconds);
  step.nonce = renewed.lease_nonce ?? step.nonce;
}

export function isRejection(error: unknown, agentCode: string): boolean {
  return error instanceof AgentCallError && error.failure === "rejected" && error.agentCode === agentCode;
}

import {
  isTransitionAllowed,
  type DesiredState,
  type InstanceObservation,
  type InstanceStatus,
  type ReasonCode,
} from "@berth/shared";

/**
 * Pure decisions of the instance driver: which action serves a desired state, which
 * transitional status an action passes through, and which status an observation settles on.
 */

/** What the driver asks an agent to do. `deploy` sends the whole spec (PUT), the others act on the container. */
export type DriveAction = "deploy" | "start" | "stop" | "restart" | "remove";

/** Transitional statuses an action may show, in order of preference. */
const TRANSITIONAL: Readonly<Record<DriveAction, readonly InstanceStatus[]>> = {
  deploy: ["deploying"],
  start: ["starting", "deploying"],
  stop: ["stopping"],
  restart: ["restarting", "starting", "deploying"],
  remove: ["removing"],
};

/** Desired state each action implies; `deploy` follows whatever the row wants. */
const IMPLIED_DESIRED_STATE: Readonly<Record<DriveAction, DesiredState | null>> = {
  deploy: null,
  start: "running",
  stop: "stopped",
  restart: "running",
  remove: "removed",
};

/** Reason recorded when the driver serves an intent that it did not receive as its own action. */
export const REQUEST_REASON: Readonly<Record<DesiredState, ReasonCode>> = {
  running: "StartRequested",
  stopped: "StopRequested",
  removed: "RemoveRequested",
};

/**
 * Returns the action that serves the row's current intent. An instance that never had a
 * container (`pending`) is deployed whatever the action, and an action that contradicts the
 * desired state (another request recorded newer intent) gives way to that intent.
 */
export function alignAction(action: DriveAction, row: { status: InstanceStatus; desired_state: DesiredState }): DriveAction {
  const implied = IMPLIED_DESIRED_STATE[action];
  if (implied !== null && implied !== row.desired_state) return actionFor(row.desired_state);
  if (row.status === "pending" && action !== "remove") return "deploy";
  return action;
}

export function actionFor(desired: DesiredState): DriveAction {
  if (desired === "removed") return "remove";
  return desired === "stopped" ? "stop" : "start";
}

/**
 * Returns the transitional status to show while `action` runs, or null to keep the current one
 * when none of the action's statuses is reachable from it (for example `stopping` from `failed`,
 * whose next status `stopped` is reachable directly).
 */
export function transitionalStatus(action: DriveAction, current: InstanceStatus): InstanceStatus | null {
  for (const candidate of TRANSITIONAL[action]) {
    if (candidate === current || isTransitionAllowed(current, candidate)) return candidate;
  }
  return null;
}

export interface Settled {
  status: InstanceStatus;
  reasonCode: ReasonCode;
  message: string;
}

/**
 * Returns the status an observation settles on: `running` for a running container, `stopped`
 * for a stopped one that should be stopped, and `failed` with the exit code for one that should
 * run but does not (ContainerNotStarted for one that was created and never started).
 * `observation` null means no container exists.
 */
export function settledStatus(desired: DesiredState, observation: InstanceObservation | null): Settled {
  if (desired === "removed") return { status: "removed", reasonCode: "ContainerRemoved", message: "Container removed." };

  const running = observation !== null && (observation.state === "running" || observation.state === "restarting");
  if (running) return { status: "running", reasonCode: "ContainerRunning", message: "Container running." };
  if (desired === "stopped") {
    const message = observation === null ? "No container exists, so nothing runs." : "Container stopped.";
    return { status: "stopped", reasonCode: "ContainerStopped", message };
  }
  const reasonCode: ReasonCode = observation?.state === "created" ? "ContainerNotStarted" : "ContainerExited";
  return { status: "failed", reasonCode, message: exitMessage(observation) };
}

function exitMessage(observation: InstanceObservation | null): string {
  if (observation === null) return "The container should run but none exists.";
  if (observation.state === "created") return "The container should run but was never started.";
  const code = observation.exit_code === null ? "" : ` with exit code ${observation.exit_code}`;
  const oom = observation.oom_killed ? " after running out of memory" : "";
  return `The container should run but is ${observation.state}${code}${oom}.`;
}

/**
 * Returns `status` when the transition from `current` is allowed (or keeps the status), else
 * `unknown`, which every status that may have a container can reach.
 */
export function reachableStatus(current: InstanceStatus, status: InstanceStatus): InstanceStatus {
  if (current === status || isTransitionAllowed(current, status)) return status;
  return "unknown";
}

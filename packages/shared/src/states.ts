import { z } from "zod";

/**
 * Lifecycle vocabulary of toolboxes and instances. The database enforces the same values
 * (enum types, `berth_private.instance_status_transitions`, `berth_private.reason_codes`);
 * a database test proves both sides are equal.
 */

export const TOOLBOX_STATUSES = ["provisioning", "active", "unreachable", "draining", "decommissioned"] as const;
export const ToolboxStatus = z.enum(TOOLBOX_STATUSES);
export type ToolboxStatus = z.infer<typeof ToolboxStatus>;

export const DESIRED_STATES = ["running", "stopped", "removed"] as const;
export const DesiredState = z.enum(DESIRED_STATES);
export type DesiredState = z.infer<typeof DesiredState>;

export const INSTANCE_STATUSES = [
  "pending",
  "deploying",
  "starting",
  "running",
  "stopping",
  "stopped",
  "restarting",
  "failed",
  "unknown",
  "removing",
  "removed",
] as const;
export const InstanceStatus = z.enum(INSTANCE_STATUSES);
export type InstanceStatus = z.infer<typeof InstanceStatus>;

/** Statuses an operation passes through. One that lasts past its deadline is a stuck transition. */
export const TRANSITIONAL_STATUSES: readonly InstanceStatus[] = ["deploying", "starting", "stopping", "restarting", "removing"];

export const EVENT_ACTORS = ["user", "agent", "reconciler", "system"] as const;
export const EventActor = z.enum(EVENT_ACTORS);
export type EventActor = z.infer<typeof EventActor>;

export const REASON_CODES = [
  // Owner requests.
  "Created",
  "DeployRequested",
  "StartRequested",
  "StopRequested",
  "RestartRequested",
  "RemoveRequested",
  // Outcomes reported by the agent.
  "ContainerRunning",
  "ContainerStopped",
  "ContainerRemoved",
  "ImageNotFound",
  "PortInUse",
  "AgentError",
  "HostRecovered",
  // Drift found and repaired by the reconciler.
  "ContainerMissing",
  "ContainerExited",
  "ContainerNotStarted",
  "CrashLoop",
  "UnexpectedlyRunning",
  "SpecChanged",
  "Orphan",
  "StuckTransition",
  "Adopted",
  "HostUnreachable",
] as const;
export const ReasonCode = z.enum(REASON_CODES);
export type ReasonCode = z.infer<typeof ReasonCode>;

/**
 * Every allowed status change, keyed by the status it leaves. Keeping the same status is not a
 * transition. `removed` is final, nothing returns to `pending`, and only statuses that may have
 * a container can become `unknown`.
 */
export const INSTANCE_STATUS_TRANSITIONS: Readonly<Record<InstanceStatus, readonly InstanceStatus[]>> = {
  pending: ["deploying", "failed", "removing", "removed"],
  deploying: ["starting", "running", "stopped", "failed", "unknown", "removing"],
  starting: ["running", "stopping", "stopped", "failed", "deploying", "unknown", "removing"],
  running: ["stopping", "stopped", "restarting", "starting", "deploying", "failed", "unknown", "removing"],
  stopping: ["stopped", "running", "failed", "unknown", "removing"],
  stopped: ["starting", "running", "stopping", "deploying", "unknown", "removing"],
  restarting: ["running", "stopping", "failed", "deploying", "unknown", "removing"],
  failed: ["deploying", "starting", "restarting", "running", "stopped", "unknown", "removing"],
  unknown: ["deploying", "starting", "running", "stopping", "stopped", "restarting", "failed", "removing", "removed"],
  removing: ["removed", "unknown"],
  removed: [],
};

/** Returns whether `from` may change to `to`. The database raises SQLSTATE BT001 for any other pair. */
export function isTransitionAllowed(from: InstanceStatus, to: InstanceStatus): boolean {
  return INSTANCE_STATUS_TRANSITIONS[from].includes(to);
}

import type { DesiredState, InstanceObservation, InstanceStatus, ReasonCode } from "@berth/shared";

/**
 * One live instance as `berth_private.record_reconcile_batch` returns it: intent, lifecycle,
 * lease and the container id recorded before this pass wrote the new observation. Times are
 * ISO strings from the database clock.
 */
export interface ReconcileInstance {
  id: string;
  toolbox_id: string;
  status: InstanceStatus;
  status_reason_code: ReasonCode | null;
  desired_state: DesiredState;
  generation: number;
  spec_generation: number;
  /** Version after this pass recorded its observation; status writes are checked against it. */
  version: number;
  status_changed_at: string;
  restart_attempts: number;
  next_attempt_at: string | null;
  /** Holder of an unexpired lease, or null. */
  lease_holder: string | null;
  lease_expires_at: string | null;
  recorded_container_id: string | null;
  /** The engine's restart count as recorded before this pass; a jump means the engine's restart policy is looping. */
  recorded_restart_count: number | null;
  /** Exit code recorded before this pass, kept for a crash-loop verdict taken while the container runs. */
  recorded_exit_code: number | null;
}

/** A labelled container without a live row on its toolbox, and when a pass first saw it. */
export interface OrphanSighting {
  toolbox_id: string;
  instance_id: string;
  container_id: string;
  state: string;
  first_seen_at: string;
}

/** Limits that decide when the reconciler acts; all durations in seconds. */
export interface PlanPolicy {
  /** Lease holder of this pass. Its own leases do not count as someone else's operation. */
  holder: string;
  /** How long a transitional or pending status may last before the pass drives it again. */
  stuckAfterSeconds: number;
  /** How long a container without a live row stays before the pass removes it. */
  orphanGraceSeconds: number;
  /**
   * Restarts before the instance is marked failed with CrashLoop: restarts the reconciler made
   * since the last intent, or restarts the engine's restart policy made since the last pass.
   */
  maxRestartAttempts: number;
}

/**
 * Agent work that repairs drift. `deploy` sends the whole spec (PUT), which recreates a missing
 * or outdated container; `move_port` moves the instance to another free host port first;
 * `give_up` reads the logs and marks the instance failed.
 */
export type RepairAction = "deploy" | "move_port" | "start" | "stop" | "remove" | "give_up";

/** Reason a pass leaves an instance alone for now. */
export type WaitReason = "leased" | "in_progress" | "backing_off" | "terminal" | "unrecognised_state";

/** Decision of a pass about one instance. */
export type Decision =
  | { kind: "in_sync" }
  | { kind: "wait"; why: WaitReason; drift: boolean }
  | { kind: "set_status"; status: InstanceStatus; reason: ReasonCode; message: string }
  | { kind: "repair"; action: RepairAction; reason: ReasonCode; message: string };

/** One decision with the inputs it was made from, as the executor needs them. */
export interface PlannedInstance {
  instance: ReconcileInstance;
  observation: InstanceObservation | null;
  decision: Decision;
}

export interface PlannedOrphan {
  orphan: OrphanSighting;
  /** True once the grace period has passed. */
  remove: boolean;
}

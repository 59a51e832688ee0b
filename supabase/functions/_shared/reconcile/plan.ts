import {
  TRANSITIONAL_STATUSES,
  isTransitionAllowed,
  type InstanceObservation,
  type InstanceStatus,
  type ReasonCode,
} from "@berth/shared";
import type { Decision, OrphanSighting, PlanPolicy, PlannedInstance, PlannedOrphan, ReconcileInstance } from "./types.ts";

/**
 * The pure diff of the reconciler: database rows against agent observations, to decisions.
 * Nothing here does I/O, so every drift case is a row in a table test.
 *
 * record_reconcile_batch leaves out the rows it finds quiet (status running or stopped as
 * desired, same container at the spec generation, no engine restart, no lease), for which
 * planInstance returns in_sync. A change to these rules must keep that SQL filter a subset.
 */

/** Docker states in which the container's process does not run and a start can help. */
const NOT_RUNNING_STATES = new Set(["created", "exited", "dead", "stopped"]);

const IN_SYNC: Decision = { kind: "in_sync" };

/** Facts about one instance that every branch of the plan needs. */
interface Facts {
  instance: ReconcileInstance;
  observation: InstanceObservation | null;
  running: boolean;
  /** The container carries an older generation label than the spec (or none). */
  outdated: boolean;
  /** The status is transitional (or pending) and older than the deadline. */
  stuck: boolean;
  /** The recorded container id was set and differs from the observed one. */
  replaced: boolean;
  /** Restarts the engine made since the last recorded observation of the same container. */
  engineRestarts: number;
  now: number;
  policy: PlanPolicy;
}

/** Decides what to do with one instance whose toolbox returned an inventory. */
export function planInstance(
  instance: ReconcileInstance,
  observation: InstanceObservation | null,
  now: Date,
  policy: PlanPolicy,
): Decision {
  if (isLeasedByOther(instance, now, policy)) return { kind: "wait", why: "leased", drift: false };

  const facts = gatherFacts(instance, observation, now, policy);
  const settling = TRANSITIONAL_STATUSES.includes(instance.status) || instance.status === "pending";
  if (settling && !facts.stuck) return { kind: "wait", why: "in_progress", drift: false };

  if (instance.desired_state === "removed") return planRemoved(facts);
  if (instance.desired_state === "stopped") return planStopped(facts);
  return planRunning(facts);
}

function isLeasedByOther(instance: ReconcileInstance, now: Date, policy: PlanPolicy): boolean {
  if (instance.lease_holder === null || instance.lease_holder === policy.holder) return false;
  return instance.lease_expires_at === null || Date.parse(instance.lease_expires_at) > now.getTime();
}

function gatherFacts(
  instance: ReconcileInstance,
  observation: InstanceObservation | null,
  now: Date,
  policy: PlanPolicy,
): Facts {
  const settling = TRANSITIONAL_STATUSES.includes(instance.status) || instance.status === "pending";
  const age = (now.getTime() - Date.parse(instance.status_changed_at)) / 1000;
  const recorded = instance.recorded_container_id;

  return {
    instance,
    observation,
    running: observation !== null && (observation.state === "running" || observation.state === "restarting"),
    outdated: observation !== null && (observation.generation === null || observation.generation < instance.spec_generation),
    stuck: settling && age >= policy.stuckAfterSeconds,
    replaced: observation !== null && recorded !== null && recorded !== observation.container_id,
    engineRestarts: engineRestartsSince(instance, observation),
    now: now.getTime(),
    policy,
  };
}

function engineRestartsSince(instance: ReconcileInstance, observation: InstanceObservation | null): number {
  if (observation === null || instance.recorded_container_id !== observation.container_id) return 0;
  return Math.max(0, observation.restart_count - (instance.recorded_restart_count ?? observation.restart_count));
}

/** Desired running: the container must exist at the spec generation and run. */
function planRunning(facts: Facts): Decision {
  const { instance, observation } = facts;

  if (instance.status === "failed") return planFailed(facts);
  if (observation === null) return repair("deploy", facts.stuck ? "StuckTransition" : "ContainerMissing", "Desired running but no container exists; recreating it from the spec.");
  if (facts.outdated) return repair("deploy", "SpecChanged", specMessage(facts));
  if (instance.status === "pending") return repair("deploy", "StuckTransition", "Pending past its deadline; deploying again.");
  if (facts.engineRestarts >= facts.policy.maxRestartAttempts) return engineCrashLoop(facts);
  if (facts.running) return settle(facts, "running");
  return planExited(facts);
}

/**
 * Gives up on a container that the engine's restart policy restarted again and again since
 * the last pass. It flaps between running and exited, which is a crash loop as much as the
 * reconciler's own restarts are.
 */
function engineCrashLoop(facts: Facts): Decision {
  return repair("give_up", "CrashLoop", `The engine restarted the container ${facts.engineRestarts} times since the last pass; marking it failed.`);
}

/** An exited container that should run: restart with back-off, then give up with CrashLoop. */
function planExited(facts: Facts): Decision {
  const { instance, observation } = facts;

  if (!NOT_RUNNING_STATES.has(observation!.state)) return { kind: "wait", why: "unrecognised_state", drift: true };
  if (instance.restart_attempts >= facts.policy.maxRestartAttempts) {
    return repair("give_up", "CrashLoop", `The container kept exiting after ${instance.restart_attempts} restarts; marking it failed.`);
  }
  if (instance.next_attempt_at !== null && Date.parse(instance.next_attempt_at) > facts.now) {
    return { kind: "wait", why: "backing_off", drift: true };
  }
  return repair("start", startReason(facts), `Desired running but the container is ${observation!.state}${exitSuffix(observation!)}; starting it.`);
}

function startReason(facts: Facts): ReasonCode {
  if (facts.stuck) return "StuckTransition";
  return facts.observation!.state === "created" ? "ContainerNotStarted" : "ContainerExited";
}

/**
 * Plans a failed instance, which stays failed until its owner records new intent. A crash loop
 * is final. For another failure, a container that runs again is reported as running, and an exit (the driver
 * marks a container that exits right after its start failed) is restarted under the back-off
 * until the restart limit turns it into CrashLoop. A taken host port gets another port instead.
 */
function planFailed(facts: Facts): Decision {
  const { observation } = facts;

  if (facts.instance.status_reason_code === "CrashLoop") return { kind: "wait", why: "terminal", drift: false };
  const runsCurrentSpec = facts.running && !facts.outdated;
  if (facts.instance.status_reason_code === "PortInUse" && !runsCurrentSpec) return planPortInUse(facts);
  if (observation === null || facts.outdated) return { kind: "wait", why: "terminal", drift: false };
  if (facts.engineRestarts >= facts.policy.maxRestartAttempts) return engineCrashLoop(facts);
  if (facts.running) return settle(facts, "running");
  return planExited(facts);
}

/**
 * Plans an instance that failed because another program uses its host port. Starting it
 * again would try the same port, so the repair moves it to another free port and sends the
 * spec. The attempts share the restart back-off and limit, and past the limit the instance
 * stays failed until its owner records new intent.
 */
function planPortInUse(facts: Facts): Decision {
  const { instance } = facts;

  if (instance.restart_attempts >= facts.policy.maxRestartAttempts) return { kind: "wait", why: "terminal", drift: false };
  if (instance.next_attempt_at !== null && Date.parse(instance.next_attempt_at) > facts.now) {
    return { kind: "wait", why: "backing_off", drift: true };
  }
  return repair("move_port", "PortInUse", "Failed because its host port is in use on the host; moving it to another free host port.");
}

/** Desired stopped: a container may exist at the spec generation but must not run. */
function planStopped(facts: Facts): Decision {
  const { instance, observation } = facts;

  if (facts.outdated) return repair("deploy", "SpecChanged", specMessage(facts));
  if (instance.status === "pending") return repair("deploy", "StuckTransition", "Pending past its deadline; deploying it stopped.");
  if (facts.running) {
    const reason: ReasonCode = facts.stuck ? "StuckTransition" : "UnexpectedlyRunning";
    return repair("stop", reason, "Desired stopped but the container is running; stopping it.");
  }
  if (observation !== null && !NOT_RUNNING_STATES.has(observation.state)) return { kind: "wait", why: "unrecognised_state", drift: true };
  return settle(facts, "stopped");
}

/** Desired removed: the container must go and the row must end `removed`. */
function planRemoved(facts: Facts): Decision {
  const reason: ReasonCode = facts.stuck ? "StuckTransition" : "RemoveRequested";
  if (facts.observation !== null) return repair("remove", reason, "Desired removed but the container exists; removing it.");

  const status: InstanceStatus = "removed";
  if (!isTransitionAllowed(facts.instance.status, status)) return repair("remove", reason, "Desired removed; finishing the removal.");
  return { kind: "set_status", status, reason: facts.stuck ? "StuckTransition" : "ContainerRemoved", message: "No container exists; the instance is removed." };
}

/**
 * Sets the status from an observation that already matches the desired state, where only the
 * status may lag behind. It goes through the driver when the transition table does not allow
 * a direct change.
 */
function settle(facts: Facts, target: "running" | "stopped"): Decision {
  const { instance } = facts;

  if (instance.status === target) {
    if (!facts.replaced) return IN_SYNC;
    return { kind: "set_status", status: target, reason: "Adopted", message: adoptedMessage(facts) };
  }
  const reason = settleReason(facts, target);
  const message = `The container is ${facts.observation?.state ?? "absent"}; the status follows it.`;
  if (isTransitionAllowed(instance.status, target)) return { kind: "set_status", status: target, reason, message };
  return repair(target === "running" ? "start" : "stop", reason, message);
}

function settleReason(facts: Facts, target: "running" | "stopped"): ReasonCode {
  if (facts.instance.status === "unknown") return "HostRecovered";
  if (facts.stuck) return "StuckTransition";
  if (facts.replaced) return "Adopted";
  return target === "running" ? "ContainerRunning" : "ContainerStopped";
}

function repair(action: Extract<Decision, { kind: "repair" }>["action"], reason: ReasonCode, message: string): Decision {
  return { kind: "repair", action, reason, message };
}

function specMessage(facts: Facts): string {
  const label = facts.observation?.generation ?? "none";
  return `The container has generation ${label} but the spec is at ${facts.instance.spec_generation}; recreating it.`;
}

function adoptedMessage(facts: Facts): string {
  return `Adopted container ${facts.observation!.container_id} in place of ${facts.instance.recorded_container_id}.`;
}

function exitSuffix(observation: InstanceObservation): string {
  const code = observation.exit_code === null ? "" : ` with exit code ${observation.exit_code}`;
  return observation.oom_killed ? `${code} after running out of memory` : code;
}

/** Decides whether a pass removes an orphan container: only after the grace period. */
export function planOrphan(orphan: OrphanSighting, now: Date, policy: PlanPolicy): PlannedOrphan {
  const age = (now.getTime() - Date.parse(orphan.first_seen_at)) / 1000;
  return { orphan, remove: age >= policy.orphanGraceSeconds };
}

/**
 * Plans every live instance of the reachable toolboxes of a batch. `observationOf` returns the
 * observation that the instance's own toolbox reported, or null when it reported none.
 */
export function planInstances(
  instances: readonly ReconcileInstance[],
  observationOf: (instance: ReconcileInstance) => InstanceObservation | null,
  now: Date,
  policy: PlanPolicy,
): PlannedInstance[] {
  return instances.map((instance) => {
    const observation = observationOf(instance);
    return { instance, observation, decision: planInstance(instance, observation, now, policy) };
  });
}

/** Returns whether a decision counts as drift found in the pass's counts. */
export function isDrift(decision: Decision): boolean {
  if (decision.kind === "wait") return decision.drift;
  return decision.kind !== "in_sync";
}

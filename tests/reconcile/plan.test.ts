import { describe, expect, test } from "vitest";
import type { InstanceObservation } from "../../packages/shared/src/index.ts";
import { isDrift, planInstance, planOrphan } from "../../supabase/functions/_shared/reconcile/plan.ts";
import type { Decision, PlanPolicy, ReconcileInstance } from "../../supabase/functions/_shared/reconcile/types.ts";

const NOW = new Date("2026-12-04T12:00:00.000Z");
const HOLDER = "reconciler:test";
const POLICY: PlanPolicy = { holder: HOLDER, stuckAfterSeconds: 60, orphanGraceSeconds: 300, maxRestartAttempts: 3 };

function secondsAgo(seconds: number): string {
  return new Date(NOW.getTime() - seconds * 1000).toISOString();
}

function instance(overrides: Partial<ReconcileInstance> = {}): ReconcileInstance {
  return {
    id: "11111111-1111-4111-8111-111111111111",
    toolbox_id: "22222222-2222-4222-8222-222222222222",
    status: "running",
    status_reason_code: "ContainerRunning",
    desired_state: "running",
    generation: 3,
    spec_generation: 2,
    version: 7,
    status_changed_at: secondsAgo(3600),
    restart_attempts: 0,
    next_attempt_at: null,
    lease_holder: null,
    lease_expires_at: null,
    recorded_container_id: "c1",
    recorded_restart_count: 0,
    recorded_exit_code: null,
    ...overrides,
  };
}

function observed(overrides: Partial<InstanceObservation> = {}): InstanceObservation {
  return {
    instance_id: "11111111-1111-4111-8111-111111111111",
    container_id: "c1",
    state: "running",
    exit_code: null,
    oom_killed: false,
    restart_count: 0,
    generation: 2,
    host_port: 30001,
    started_at: secondsAgo(3000),
    finished_at: null,
    health: null,
    ...overrides,
  };
}

const EXITED = observed({ state: "exited", exit_code: 3 });

/** Reduces a decision to what a case asserts: its kind plus action or status, and the reason. */
function summary(decision: Decision): string {
  switch (decision.kind) {
    case "in_sync":
      return "in_sync";
    case "wait":
      return `wait ${decision.why}`;
    case "set_status":
      return `set_status ${decision.status} ${decision.reason}`;
    case "repair":
      return `repair ${decision.action} ${decision.reason}`;
  }
}

interface Case {
  name: string;
  row: Partial<ReconcileInstance>;
  observation: InstanceObservation | null;
  expected: string;
}

const CASES: Case[] = [
  // Nothing to do.
  { name: "running and running", row: {}, observation: observed(), expected: "in_sync" },
  { name: "stopped and exited", row: { status: "stopped", desired_state: "stopped" }, observation: EXITED, expected: "in_sync" },
  { name: "stopped without container", row: { status: "stopped", desired_state: "stopped", recorded_container_id: null }, observation: null, expected: "in_sync" },
  { name: "newer label than spec", row: {}, observation: observed({ generation: 5 }), expected: "in_sync" },

  // Desired running.
  { name: "container missing", row: {}, observation: null, expected: "repair deploy ContainerMissing" },
  { name: "container exited", row: {}, observation: EXITED, expected: "repair start ContainerExited" },
  { name: "container created not started", row: {}, observation: observed({ state: "created" }), expected: "repair start ContainerNotStarted" },
  { name: "exited while backing off", row: { restart_attempts: 1, next_attempt_at: secondsAgo(-30) }, observation: EXITED, expected: "wait backing_off" },
  { name: "exited after back-off", row: { restart_attempts: 1, next_attempt_at: secondsAgo(1) }, observation: EXITED, expected: "repair start ContainerExited" },
  { name: "exited at restart limit", row: { restart_attempts: 3 }, observation: EXITED, expected: "repair give_up CrashLoop" },
  { name: "failed by driver restarts", row: { status: "failed", status_reason_code: "ContainerExited", restart_attempts: 1 }, observation: EXITED, expected: "repair start ContainerExited" },
  { name: "failed by driver at limit", row: { status: "failed", status_reason_code: "ContainerExited", restart_attempts: 3 }, observation: EXITED, expected: "repair give_up CrashLoop" },
  { name: "crash loop is terminal", row: { status: "failed", status_reason_code: "CrashLoop", restart_attempts: 3 }, observation: EXITED, expected: "wait terminal" },
  { name: "failed without container", row: { status: "failed", status_reason_code: "ImageNotFound" }, observation: null, expected: "wait terminal" },
  { name: "failed runs again", row: { status: "failed", status_reason_code: "ContainerExited" }, observation: observed(), expected: "set_status running ContainerRunning" },
  { name: "crash loop running is terminal", row: { status: "failed", status_reason_code: "CrashLoop" }, observation: observed(), expected: "wait terminal" },
  { name: "engine restart loop", row: { recorded_restart_count: 4 }, observation: observed({ restart_count: 7 }), expected: "repair give_up CrashLoop" },
  { name: "engine restart loop exited", row: { recorded_restart_count: 0 }, observation: observed({ state: "exited", exit_code: 3, restart_count: 3 }), expected: "repair give_up CrashLoop" },
  { name: "few engine restarts", row: { recorded_restart_count: 4 }, observation: observed({ restart_count: 6 }), expected: "in_sync" },
  { name: "restarts of new container", row: { recorded_container_id: "c0", recorded_restart_count: 0 }, observation: observed({ restart_count: 9 }), expected: "set_status running Adopted" },
  { name: "paused container", row: {}, observation: observed({ state: "paused" }), expected: "wait unrecognised_state" },
  { name: "spec changed", row: { spec_generation: 3 }, observation: observed({ generation: 2 }), expected: "repair deploy SpecChanged" },
  { name: "unlabelled generation", row: {}, observation: observed({ generation: null }), expected: "repair deploy SpecChanged" },
  { name: "container replaced", row: { recorded_container_id: "c0" }, observation: observed(), expected: "set_status running Adopted" },
  { name: "first container recorded", row: { recorded_container_id: null }, observation: observed(), expected: "in_sync" },
  { name: "stopped row runs", row: { status: "stopped" }, observation: observed(), expected: "set_status running ContainerRunning" },

  // Failed because another program uses the host port.
  { name: "port in use moves port", row: { status: "failed", status_reason_code: "PortInUse" }, observation: observed({ state: "created" }), expected: "repair move_port PortInUse" },
  { name: "port in use without container", row: { status: "failed", status_reason_code: "PortInUse" }, observation: null, expected: "repair move_port PortInUse" },
  { name: "port in use outdated container", row: { status: "failed", status_reason_code: "PortInUse", spec_generation: 3 }, observation: observed({ state: "created" }), expected: "repair move_port PortInUse" },
  { name: "port in use backing off", row: { status: "failed", status_reason_code: "PortInUse", restart_attempts: 1, next_attempt_at: secondsAgo(-30) }, observation: observed({ state: "created" }), expected: "wait backing_off" },
  { name: "port in use after back-off", row: { status: "failed", status_reason_code: "PortInUse", restart_attempts: 2, next_attempt_at: secondsAgo(1) }, observation: observed({ state: "created" }), expected: "repair move_port PortInUse" },
  { name: "port in use at limit", row: { status: "failed", status_reason_code: "PortInUse", restart_attempts: 3 }, observation: observed({ state: "created" }), expected: "wait terminal" },
  { name: "port in use runs again", row: { status: "failed", status_reason_code: "PortInUse" }, observation: observed(), expected: "set_status running ContainerRunning" },

  // Desired stopped.
  { name: "unexpectedly running", row: { status: "stopped", desired_state: "stopped" }, observation: observed(), expected: "repair stop UnexpectedlyRunning" },
  { name: "stopped spec changed", row: { status: "stopped", desired_state: "stopped", spec_generation: 4 }, observation: EXITED, expected: "repair deploy SpecChanged" },
  { name: "running row exited", row: { desired_state: "stopped" }, observation: EXITED, expected: "set_status stopped ContainerStopped" },

  // Host recovered.
  { name: "unknown and running", row: { status: "unknown" }, observation: observed(), expected: "set_status running HostRecovered" },
  { name: "unknown and stopped", row: { status: "unknown", desired_state: "stopped" }, observation: EXITED, expected: "set_status stopped HostRecovered" },
  { name: "unknown and missing", row: { status: "unknown" }, observation: null, expected: "repair deploy ContainerMissing" },
  { name: "unknown and exited", row: { status: "unknown" }, observation: EXITED, expected: "repair start ContainerExited" },

  // Transitional statuses.
  { name: "starting within deadline", row: { status: "starting", status_changed_at: secondsAgo(10) }, observation: EXITED, expected: "wait in_progress" },
  { name: "starting stuck and exited", row: { status: "starting", status_changed_at: secondsAgo(120) }, observation: EXITED, expected: "repair start StuckTransition" },
  { name: "starting stuck and running", row: { status: "starting", status_changed_at: secondsAgo(120) }, observation: observed(), expected: "set_status running StuckTransition" },
  { name: "deploying stuck and missing", row: { status: "deploying", status_changed_at: secondsAgo(120) }, observation: null, expected: "repair deploy StuckTransition" },
  { name: "stopping stuck and running", row: { status: "stopping", desired_state: "stopped", status_changed_at: secondsAgo(120) }, observation: observed(), expected: "repair stop StuckTransition" },
  { name: "restarting stuck stopped", row: { status: "restarting", desired_state: "stopped", status_changed_at: secondsAgo(120) }, observation: EXITED, expected: "repair stop StuckTransition" },
  { name: "pending within deadline", row: { status: "pending", status_changed_at: secondsAgo(5) }, observation: null, expected: "wait in_progress" },
  { name: "pending stuck", row: { status: "pending", status_changed_at: secondsAgo(120) }, observation: null, expected: "repair deploy StuckTransition" },
  { name: "pending stuck with container", row: { status: "pending", status_changed_at: secondsAgo(120) }, observation: observed(), expected: "repair deploy StuckTransition" },

  // Desired removed.
  { name: "removal left running", row: { desired_state: "removed" }, observation: observed(), expected: "repair remove RemoveRequested" },
  { name: "removal without container", row: { desired_state: "removed" }, observation: null, expected: "repair remove RemoveRequested" },
  { name: "removing stuck with container", row: { status: "removing", desired_state: "removed", status_changed_at: secondsAgo(120) }, observation: observed(), expected: "repair remove StuckTransition" },
  { name: "removing stuck without container", row: { status: "removing", desired_state: "removed", status_changed_at: secondsAgo(120) }, observation: null, expected: "set_status removed StuckTransition" },
  { name: "unknown removed without container", row: { status: "unknown", desired_state: "removed" }, observation: null, expected: "set_status removed ContainerRemoved" },

  // Leases.
  { name: "leased by another", row: { lease_holder: "user:1", lease_expires_at: secondsAgo(-20) }, observation: null, expected: "wait leased" },
  { name: "own lease", row: { lease_holder: HOLDER, lease_expires_at: secondsAgo(-20) }, observation: null, expected: "repair deploy ContainerMissing" },
  { name: "expired lease", row: { lease_holder: "user:1", lease_expires_at: secondsAgo(1) }, observation: null, expected: "repair deploy ContainerMissing" },
];

describe("reconcile plan", () => {
  for (const { name, row, observation, expected } of CASES) {
    test(name, () => {
      expect(summary(planInstance(instance(row), observation, NOW, POLICY))).toBe(expected);
    });
  }

  test("drift counts exclude waits for others", () => {
    expect(isDrift({ kind: "in_sync" })).toBe(false);
    expect(isDrift({ kind: "wait", why: "leased", drift: false })).toBe(false);
    expect(isDrift({ kind: "wait", why: "backing_off", drift: true })).toBe(true);
    expect(isDrift({ kind: "repair", action: "start", reason: "ContainerExited", message: "" })).toBe(true);
  });

  test("orphan kept within grace", () => {
    const orphan = { toolbox_id: "t", instance_id: "i", container_id: "c", state: "running", first_seen_at: secondsAgo(299) };

    expect(planOrphan(orphan, NOW, POLICY).remove).toBe(false);
  });

  test("orphan removed after grace", () => {
    const orphan = { toolbox_id: "t", instance_id: "i", container_id: "c", state: "exited", first_seen_at: secondsAgo(300) };

    expect(planOrphan(orphan, NOW, POLICY).remove).toBe(true);
  });
});

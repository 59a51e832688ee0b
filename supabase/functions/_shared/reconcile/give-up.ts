import { isTransitionAllowed, type InstanceObservation } from "@berth/shared";
import type { DtmaClient } from "../dtma-client.ts";
import type { InstanceRow, ToolboxRow } from "../registry.ts";
import type { RepairContext, RepairDecision, RepairEvidence, RepairOutcome } from "./repair.ts";
import { redactSecretValues } from "../redact.ts";

/**
 * The crash-loop verdict: the reconciler's own repair, not the driver's. It reads what the
 * owner needs to find the cause, halts the container for good and marks the instance failed.
 */

/**
 * Inventory reads while waiting for a crash-looping container to show its exit code, 100 ms
 * apart. The agent reports an exit code only while the container is between two runs, which
 * Podman 4.3 keeps short, so a few reads can miss it.
 */
const EXIT_CODE_POLLS = 50;

/** Stop requests for a crash-looping container before the pass removes it instead. */
const STOP_ATTEMPTS = 3;

/**
 * How long a container must stay stopped, with an unchanged restart count and start time, to
 * count as halted. Podman 4.3 restarts a crashing container within about 200 ms (measured with
 * the test stack's engine), and Docker shows the state `restarting` while it waits.
 */
const STABLE_STOP_MS = 1_500;

/** Interval of the inventory reads that watch a stopped container. */
const WATCH_INTERVAL_MS = 250;

/**
 * Marks a crash-looping instance failed with the exit code, the OOM flag and the last log
 * lines in the event. It also halts the container, because the agent creates containers with
 * the `unless-stopped` restart policy and the engine would otherwise keep restarting it. The
 * reconciler leaves a CrashLoop instance alone until its owner records new intent.
 */
export async function giveUp(
  context: RepairContext,
  row: InstanceRow,
  toolbox: ToolboxRow,
  decision: RepairDecision,
  evidence: RepairEvidence,
  plannedVersion: number,
): Promise<RepairOutcome> {
  const { observation } = evidence;
  const leased = await context.registry.claimInstanceLeaseAtVersion(row.id, plannedVersion, context.holder, context.config.toolboxLeaseSeconds);
  const nonce = leased.lease_nonce ?? "";

  try {
    const tail = await logTail(context, toolbox, row.id);
    const exitCode = await crashExitCode(context, toolbox, row.id, evidence);
    const halted = await haltContainer(context, toolbox, row.id);
    const details = {
      exit_code: exitCode,
      oom_killed: observation?.oom_killed ?? halted?.observation?.oom_killed ?? null,
      restart_attempts: leased.restart_attempts,
      engine_restart_count: observation?.restart_count ?? null,
      container_removed: halted?.removed ?? false,
      log_tail: tail,
    };
    if (halted !== null) await context.registry.recordObservation(toolbox.id, row.id, halted.observation);
    await markFailed(context, leased, nonce, decision, details);
    return "repaired";
  } finally {
    await context.registry.releaseInstanceLease(row.id, nonce);
  }
}

async function markFailed(context: RepairContext, leased: InstanceRow, nonce: string, decision: RepairDecision, details: Record<string, unknown>): Promise<void> {
  // A status change appends its event by trigger. A row already failed (the driver marks an
  // exit right after a start failed) keeps its status, so the verdict gets an explicit event.
  const status = leased.status === "failed" || isTransitionAllowed(leased.status, "failed") ? "failed" : "unknown";
  await context.registry.setInstanceStatus(nonce, {
    instanceId: leased.id,
    status,
    reasonCode: decision.reason,
    message: decision.message,
    actor: "reconciler",
    details,
  });
  if (leased.status === status) await context.store.recordEvent(leased.id, decision.reason, decision.message, details);
}

/**
 * Returns the exit code of the crash, or null when no read showed one. The engine may just have
 * restarted the container, so while it runs the inventory is read again for up to 5 s. The code
 * after halting it is not used, because it would only show our own SIGTERM (143).
 */
async function crashExitCode(context: RepairContext, toolbox: ToolboxRow, instanceId: string, evidence: RepairEvidence): Promise<number | null> {
  if (evidence.observation?.exit_code != null) return evidence.observation.exit_code;

  try {
    const client = await context.clientFor(toolbox);
    for (let poll = 0; poll < EXIT_CODE_POLLS; poll += 1) {
      const current = await observeOne(client, instanceId);
      if (current?.exit_code != null) return current.exit_code;
      await sleep(100);
    }
  } catch (error) {
    context.logger.warn("could not read the exit code of a crash-looping container", { instance_id: instanceId, error: describe(error) });
  }
  return evidence.recordedExitCode;
}

/** The container's state once halted: its last observation, or null and `removed` once it is gone. */
interface Halted {
  observation: InstanceObservation | null;
  removed: boolean;
}

/**
 * Stops the container so that it stays stopped, or returns null when the agent cannot do it.
 * A stop only takes effect when it reaches a running container: Podman 4.3 responds to a stop
 * between two restarts with 304 (not modified) and then restarts the container by its policy. So each stop is followed by
 * a watch of STABLE_STOP_MS. After STOP_ATTEMPTS restarts the container is removed: the event
 * keeps its exit code and log tail, and the owner's next start recreates it from the spec.
 */
async function haltContainer(context: RepairContext, toolbox: ToolboxRow, instanceId: string): Promise<Halted | null> {
  try {
    const client = await context.clientFor(toolbox);

    for (let attempt = 1; attempt <= STOP_ATTEMPTS; attempt += 1) {
      const stopped = await client.stop(instanceId);
      const settled = await watchStopped(client, instanceId, stopped);
      if (settled !== undefined) return { observation: settled, removed: false };
    }

    context.logger.warn("crash-looping container kept restarting after stop requests; removing it", { instance_id: instanceId, attempts: STOP_ATTEMPTS });
    await client.remove(instanceId);
    return { observation: null, removed: true };
  } catch (error) {
    context.logger.warn("could not halt a crash-looping container", { instance_id: instanceId, error: describe(error) });
    return null;
  }
}

/**
 * Watches a stopped container for STABLE_STOP_MS. Returns its last observation (null once it is
 * gone), or undefined when it ran or restarted meanwhile.
 */
async function watchStopped(client: DtmaClient, instanceId: string, stopped: InstanceObservation): Promise<InstanceObservation | null | undefined> {
  const deadline = Date.now() + STABLE_STOP_MS;
  let current: InstanceObservation | null = stopped;

  while (current !== null && !isRunning(current) && sameRun(current, stopped)) {
    if (Date.now() >= deadline) return current;
    await sleep(WATCH_INTERVAL_MS);
    current = await observeOne(client, instanceId);
  }
  return current === null ? null : undefined;
}

function isRunning(observation: InstanceObservation): boolean {
  return observation.state === "running" || observation.state === "restarting";
}

/** Returns whether two observations show the same container without a restart in between. */
function sameRun(current: InstanceObservation, stopped: InstanceObservation): boolean {
  return current.container_id === stopped.container_id && current.restart_count === stopped.restart_count && current.started_at === stopped.started_at;
}

/**
 * Returns the container's last log lines as text, or null when the agent cannot give them.
 * The tail goes into an event the owner can read and that is never deleted, so the
 * instance's secret values are replaced first.
 */
async function logTail(context: RepairContext, toolbox: ToolboxRow, instanceId: string): Promise<string | null> {
  try {
    const client = await context.clientFor(toolbox);
    const logs = await client.logs(instanceId, context.config.logTailLines);
    const secrets = Object.values(await context.registry.instanceSecretValues(instanceId));
    const text = redactSecretValues(logs.lines.map((line) => line.text).join("\n"), secrets);
    return text.length > 4000 ? text.slice(text.length - 4000) : text;
  } catch (error) {
    context.logger.warn("could not read the logs of a crash-looping container", { instance_id: instanceId, error: describe(error) });
    return null;
  }
}

async function observeOne(client: DtmaClient, instanceId: string): Promise<InstanceObservation | null> {
  return (await client.inventory()).instances.find((entry) => entry.instance_id === instanceId) ?? null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

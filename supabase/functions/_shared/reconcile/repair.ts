import { isTransitionAllowed, type InstanceObservation } from "@berth/shared";
import type { DtmaClient } from "../dtma-client.ts";
import type { InstanceDriver } from "../driver.ts";
import { ApiError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { InstanceRow, Registry, ToolboxRow } from "../registry.ts";
import type { ReconcileConfig } from "./config.ts";
import type { ReconcileStore } from "./store.ts";
import type { Decision, OrphanSighting } from "./types.ts";

/**
 * Carries out the repairs a plan decided, one instance at a time under its lease. Agent work
 * goes through the shared instance driver with actor `reconciler`, so repairs and user requests
 * take the same path. Only the crash-loop verdict and orphan removal are the reconciler's own.
 */

/** `skipped`: another operation held the lease, so a later pass looks again. */
export type RepairOutcome = "repaired" | "failed" | "skipped";

export interface RepairContext {
  store: ReconcileStore;
  registry: Registry;
  driver: InstanceDriver;
  clientFor: (toolbox: ToolboxRow) => Promise<DtmaClient>;
  config: ReconcileConfig;
  holder: string;
  logger: Logger;
}

type RepairDecision = Extract<Decision, { kind: "repair" }>;

/** Evidence the plan used for one instance: the agent's observation and values recorded before the pass. */
export interface RepairEvidence {
  observation: InstanceObservation | null;
  recordedExitCode: number | null;
}

/** Inventory reads while waiting for a crash-looping container to show its exit code, 200 ms apart. */
const EXIT_CODE_POLLS = 10;

/** Repairs one instance and returns the outcome. It logs an error and returns `failed` instead of throwing. */
export async function repairInstance(
  context: RepairContext,
  row: InstanceRow,
  toolbox: ToolboxRow,
  decision: RepairDecision,
  evidence: RepairEvidence,
): Promise<RepairOutcome> {
  const log = context.logger.child({ instance_id: row.id, toolbox_id: toolbox.id, action: decision.action, reason_code: decision.reason });
  log.info("repairing drift", { message: decision.message });

  try {
    if (decision.action === "give_up") return await giveUp(context, row, toolbox, decision, evidence);
    return await drive(context, row, toolbox, decision, log);
  } catch (error) {
    if (error instanceof ApiError && error.code === "lease_held") {
      log.info("instance is leased by another operation; leaving it for the next pass");
      return "skipped";
    }
    log.error("repair failed", { error: describe(error) });
    return "failed";
  }
}

async function drive(context: RepairContext, row: InstanceRow, toolbox: ToolboxRow, decision: RepairDecision, log: Logger): Promise<RepairOutcome> {
  const action = decision.action as Exclude<RepairDecision["action"], "give_up">;

  // Every reconciler start counts towards the crash-loop limit and pushes next_attempt_at back.
  const onLeased = action === "start"
    ? async (leased: InstanceRow, nonce: string) => {
        await context.registry.recordRestartAttempt(leased.id, nonce, {
          baseSeconds: context.config.backoffBaseSeconds,
          maxSeconds: context.config.backoffMaxSeconds,
        });
      }
    : undefined;

  const result = await context.driver.drive(row, toolbox, {
    action,
    actor: "reconciler",
    holder: context.holder,
    reason: decision.reason,
    message: decision.message,
    successReason: decision.reason,
    onLeased,
  });

  if (result.outcome === "done") return "repaired";
  log.warn("repair did not finish", { outcome: result.outcome, status: result.instance.status, error: result.outcome === "failed" ? result.error.message : null });
  return "failed";
}

/**
 * Marks a crash-looping instance failed with the exit code, the OOM flag and the last log
 * lines in the event. It also stops the container, because the agent creates containers with
 * the `unless-stopped` restart policy and the engine would otherwise keep restarting it. The
 * reconciler leaves a CrashLoop instance alone until its owner records new intent.
 */
async function giveUp(
  context: RepairContext,
  row: InstanceRow,
  toolbox: ToolboxRow,
  decision: RepairDecision,
  evidence: RepairEvidence,
): Promise<RepairOutcome> {
  const { observation } = evidence;
  const leased = await context.registry.claimInstanceLease(row.id, context.holder, context.config.toolboxLeaseSeconds);
  const nonce = leased.lease_nonce ?? "";

  try {
    const tail = await logTail(context, toolbox, row.id);
    const exitCode = await crashExitCode(context, toolbox, row.id, evidence);
    const stopped = await stopQuietly(context, toolbox, row.id);
    const details = {
      exit_code: exitCode ?? stopped?.exit_code ?? null,
      oom_killed: observation?.oom_killed ?? stopped?.oom_killed ?? null,
      restart_attempts: leased.restart_attempts,
      engine_restart_count: observation?.restart_count ?? null,
      log_tail: tail,
    };
    if (stopped !== null) await context.registry.recordObservation(toolbox.id, row.id, stopped);
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
 * Returns the exit code of the crash. The engine may just have restarted the container, so
 * while it runs the inventory is read again for up to 2 s. A code from stopping it ourselves
 * would only show our own SIGTERM (143).
 */
async function crashExitCode(context: RepairContext, toolbox: ToolboxRow, instanceId: string, evidence: RepairEvidence): Promise<number | null> {
  if (evidence.observation?.exit_code != null) return evidence.observation.exit_code;

  try {
    const client = await context.clientFor(toolbox);
    for (let poll = 0; poll < EXIT_CODE_POLLS; poll += 1) {
      const current = (await client.inventory()).instances.find((entry) => entry.instance_id === instanceId);
      if (current?.exit_code != null) return current.exit_code;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (error) {
    context.logger.warn("could not read the exit code of a crash-looping container", { instance_id: instanceId, error: describe(error) });
  }
  return evidence.recordedExitCode;
}

/** Stop requests for a crash-looping container before the pass gives up on stopping it. */
const STOP_ATTEMPTS = 3;

/**
 * Stops the container and returns its last observation, or null when the agent cannot stop it.
 * A stop that arrives while the engine waits to restart the container may not cancel that
 * restart (seen with Podman), so the container is checked again and stopped once more if needed.
 */
async function stopQuietly(context: RepairContext, toolbox: ToolboxRow, instanceId: string): Promise<InstanceObservation | null> {
  try {
    const client = await context.clientFor(toolbox);
    let observation: InstanceObservation | null = null;

    for (let attempt = 1; attempt <= STOP_ATTEMPTS; attempt += 1) {
      observation = await client.stop(instanceId);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const current = (await client.inventory()).instances.find((entry) => entry.instance_id === instanceId) ?? null;
      if (current === null || (current.state !== "running" && current.state !== "restarting")) return current ?? observation;
    }
    context.logger.warn("crash-looping container still runs after stop requests", { instance_id: instanceId, attempts: STOP_ATTEMPTS });
    return observation;
  } catch (error) {
    context.logger.warn("could not stop a crash-looping container", { instance_id: instanceId, error: describe(error) });
    return null;
  }
}

/** Returns the container's last log lines as text, or null when the agent cannot give them. */
async function logTail(context: RepairContext, toolbox: ToolboxRow, instanceId: string): Promise<string | null> {
  try {
    const client = await context.clientFor(toolbox);
    const logs = await client.logs(instanceId, context.config.logTailLines);
    const text = logs.lines.map((line) => line.text).join("\n");
    return text.length > 4000 ? text.slice(text.length - 4000) : text;
  } catch (error) {
    context.logger.warn("could not read the logs of a crash-looping container", { instance_id: instanceId, error: describe(error) });
    return null;
  }
}

/**
 * Removes a labelled container that no live row claims, and appends an event when a removed
 * row of that id still exists. Without a row there is nothing to attach an event to, so the
 * log line is the record.
 */
export async function removeOrphan(context: RepairContext, toolbox: ToolboxRow, orphan: OrphanSighting): Promise<RepairOutcome> {
  const log = context.logger.child({ toolbox_id: toolbox.id, instance_id: orphan.instance_id, container_id: orphan.container_id, reason_code: "Orphan" });

  try {
    const client = await context.clientFor(toolbox);
    await client.remove(orphan.instance_id);
    log.info("removed orphan container", { first_seen_at: orphan.first_seen_at });
  } catch (error) {
    log.error("could not remove orphan container", { error: describe(error) });
    return "failed";
  }

  try {
    const message = `Removed container ${orphan.container_id}, which no live row claimed since ${orphan.first_seen_at}.`;
    await context.store.recordEvent(orphan.instance_id, "Orphan", message, { container_id: orphan.container_id, first_seen_at: orphan.first_seen_at });
  } catch (error) {
    if (!(error instanceof ApiError && error.code === "instance_not_found")) {
      log.warn("removed orphan container but could not append its event", { error: describe(error) });
    }
  }
  return "repaired";
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

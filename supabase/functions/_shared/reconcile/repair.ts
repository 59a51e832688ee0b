import type { InstanceObservation } from "@berth/shared";
import type { DtmaClient } from "../dtma-client.ts";
import type { InstanceDriver } from "../driver.ts";
import { ApiError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { InstanceRow, Registry, ToolboxRow } from "../registry.ts";
import type { ReconcileConfig } from "./config.ts";
import { giveUp } from "./give-up.ts";
import type { ReconcileStore } from "./store.ts";
import type { Decision, OrphanSighting } from "./types.ts";

/**
 * Carries out the repairs a plan decided, one instance at a time under its lease. Agent work
 * goes through the shared instance driver with actor `reconciler`, so repairs and user requests
 * take the same path. Only the crash-loop verdict and orphan removal are the reconciler's own.
 */

/** `skipped`: another operation held the lease or changed the row since the plan, so a later pass looks again. */
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

export type RepairDecision = Extract<Decision, { kind: "repair" }>;

/** Evidence the plan used for one instance: the agent's observation and values recorded before the pass. */
export interface RepairEvidence {
  observation: InstanceObservation | null;
  recordedExitCode: number | null;
}

/**
 * Repairs one instance and returns the outcome. It logs an error and returns `failed` instead of
 * throwing. The repair acts only while the row is at `plannedVersion`, the version the plan saw:
 * a row that changed since (a user's request, say) is left for the next pass.
 */
export async function repairInstance(
  context: RepairContext,
  row: InstanceRow,
  toolbox: ToolboxRow,
  decision: RepairDecision,
  evidence: RepairEvidence,
  plannedVersion: number,
): Promise<RepairOutcome> {
  const log = context.logger.child({ instance_id: row.id, toolbox_id: toolbox.id, action: decision.action, reason_code: decision.reason });

  try {
    if (row.version !== plannedVersion) throw new ApiError("version_conflict", `instance ${row.id} is at version ${row.version}, not ${plannedVersion}`);
    log.info("repairing drift", { message: decision.message });
    if (decision.action === "give_up") return await giveUp(context, row, toolbox, decision, evidence, plannedVersion);
    return await drive(context, row, toolbox, decision, plannedVersion, log);
  } catch (error) {
    if (error instanceof ApiError && (error.code === "lease_held" || error.code === "version_conflict")) {
      log.info("instance changed since the plan or is leased by another operation; leaving it for the next pass", { code: error.code });
      return "skipped";
    }
    log.error("repair failed", { error: describe(error) });
    return "failed";
  }
}

async function drive(
  context: RepairContext,
  row: InstanceRow,
  toolbox: ToolboxRow,
  decision: RepairDecision,
  plannedVersion: number,
  log: Logger,
): Promise<RepairOutcome> {
  const movePort = decision.action === "move_port";
  const action = movePort ? "deploy" : (decision.action as Exclude<RepairDecision["action"], "give_up" | "move_port">);

  // Every reconciler start and port move counts towards the attempt limit and pushes
  // next_attempt_at back, so neither a crash loop nor a taken port is retried without bound.
  const onLeased = action === "start" || movePort
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
    reasonWithoutTransition: true,
    expectedVersion: plannedVersion,
    movePort,
    onLeased,
  });

  if (result.outcome === "done") return "repaired";
  log.warn("repair did not finish", { outcome: result.outcome, status: result.instance.status, error: result.outcome === "failed" ? result.error.message : null });
  return "failed";
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

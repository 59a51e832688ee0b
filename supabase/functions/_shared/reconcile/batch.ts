import type { InstanceObservation, ReconcileCounts } from "@berth/shared";
import type { ToolboxRow } from "../registry.ts";
import { fetchInventories, mapWithConcurrency, type FetchedInventory } from "./executor.ts";
import { isDrift, planInstances, planOrphan } from "./plan.ts";
import { removeOrphan, repairInstance, type RepairContext, type RepairOutcome } from "./repair.ts";
import type { ContactResult, RecordedBatch, StatusUpdate } from "./store.ts";
import type { PlanPolicy, PlannedInstance, PlannedOrphan } from "./types.ts";

/**
 * One batch of a pass. It fetches every inventory once, then records them and reads intent in
 * one statement. It plans, applies status-only changes in one statement and runs the repairs
 * with bounded concurrency. Last, one statement releases the toolboxes and records each contact.
 *
 * An inventory may be older than a row it covers: a user's stop can finish between the fetch
 * and the record. Such rows are deferred to the next pass by the record statement, and every
 * write of the plan checks the row version the plan was made from.
 */

export interface BatchContext extends RepairContext {
  policy: PlanPolicy;
}

/** Error entries kept in reconcile_runs.errors, so one bad batch cannot bloat the row. */
export const MAX_RUN_ERRORS = 50;

/** Fetches the inventories of a claimed batch, the part of a batch that waits on agents. */
export function fetchBatch(context: BatchContext, toolboxes: ToolboxRow[]): Promise<FetchedInventory[]> {
  return fetchInventories(toolboxes, context.clientFor, context.config.fetchConcurrency);
}

/** Reconciles a batch whose inventories were fetched, then releases its toolboxes. */
export async function reconcileBatch(context: BatchContext, fetched: FetchedInventory[], counts: ReconcileCounts, errors: unknown[]): Promise<void> {
  counts.batches += 1;
  counts.toolboxes_checked += fetched.length;

  try {
    const reachable = fetched.filter((entry) => entry.reachable);
    if (reachable.length > 0) await repairBatch(context, reachable, counts);
  } finally {
    await finishBatch(context, fetched, counts, errors);
  }
}

async function repairBatch(context: BatchContext, reachable: Extract<FetchedInventory, { reachable: true }>[], counts: ReconcileCounts): Promise<void> {
  const recorded = await context.store.recordBatch(
    context.holder,
    reachable.map((entry) => ({ toolbox_id: entry.toolbox.id, instances: entry.inventory.instances })),
  );
  const observations = indexObservations(reachable);
  const planned = planInstances(recorded.instances, (instance) => observations.get(observationKey(instance.toolbox_id, instance.id)) ?? null, recorded.now, context.policy);
  const orphans = recorded.orphans.map((orphan) => planOrphan(orphan, recorded.now, context.policy));

  countPlan(planned, orphans, recorded, counts);
  await applyStatuses(context, planned, counts);
  await runRepairs(context, reachable, planned, orphans, counts);
}

/** Keys each observation by toolbox and instance. Of two containers of one instance the running one wins, as in SQL. */
function indexObservations(reachable: Extract<FetchedInventory, { reachable: true }>[]): Map<string, InstanceObservation> {
  const index = new Map<string, InstanceObservation>();
  for (const entry of reachable) {
    for (const observation of entry.inventory.instances) {
      const key = observationKey(entry.toolbox.id, observation.instance_id.toLowerCase());
      const previous = index.get(key);
      if (previous === undefined || (observation.state === "running" && previous.state !== "running")) index.set(key, observation);
    }
  }
  return index;
}

function observationKey(toolboxId: string, instanceId: string): string {
  return `${toolboxId}|${instanceId}`;
}

function countPlan(planned: PlannedInstance[], orphans: PlannedOrphan[], recorded: RecordedBatch, counts: ReconcileCounts): void {
  counts.instances_checked += recorded.quiet + recorded.deferred + recorded.instances.length;
  counts.instances_skipped += recorded.deferred;
  for (const { decision } of planned) {
    if (isDrift(decision)) counts.drift_found += 1;
    if (decision.kind === "wait" && (decision.why === "leased" || decision.why === "backing_off")) counts.instances_skipped += 1;
  }
  counts.drift_found += orphans.length;
}

/** Applies every status-only decision of the batch in one statement. */
async function applyStatuses(context: BatchContext, planned: PlannedInstance[], counts: ReconcileCounts): Promise<void> {
  const updates: StatusUpdate[] = [];
  for (const { instance, observation, decision } of planned) {
    if (decision.kind !== "set_status") continue;
    updates.push({
      instance_id: instance.id,
      expected_version: instance.version,
      status: decision.status,
      reason_code: decision.reason,
      message: decision.message,
      details: { container_id: observation?.container_id ?? null, previous_container_id: instance.recorded_container_id },
    });
  }
  if (updates.length === 0) return;

  const results = await context.store.applyStatuses(context.holder, updates);
  for (const result of results) {
    if (result.applied) counts.repairs_made += 1;
    else counts.instances_skipped += 1;
  }
}

/** Runs the agent repairs of the batch, at most `repairConcurrency` at once. */
async function runRepairs(
  context: BatchContext,
  reachable: Extract<FetchedInventory, { reachable: true }>[],
  planned: PlannedInstance[],
  orphans: PlannedOrphan[],
  counts: ReconcileCounts,
): Promise<void> {
  const toolboxes = new Map(reachable.map((entry) => [entry.toolbox.id, entry.toolbox]));
  const repairs = planned.filter((entry) => entry.decision.kind === "repair");
  const removals = orphans.filter((entry) => entry.remove);
  if (repairs.length === 0 && removals.length === 0) return;

  const rows = new Map((await context.store.loadInstances(repairs.map((entry) => entry.instance.id))).map((row) => [row.id, row]));
  const tasks: (() => Promise<RepairOutcome>)[] = [
    ...repairs.map((entry) => () => {
      const row = rows.get(entry.instance.id);
      if (row === undefined || entry.decision.kind !== "repair") return Promise.resolve<RepairOutcome>("skipped");
      const evidence = { observation: entry.observation, recordedExitCode: entry.instance.recorded_exit_code };
      return repairInstance(context, row, toolboxes.get(entry.instance.toolbox_id)!, entry.decision, evidence, entry.instance.version);
    }),
    ...removals.map((entry) => () => removeOrphan(context, toolboxes.get(entry.orphan.toolbox_id)!, entry.orphan)),
  ];

  const outcomes = await mapWithConcurrency(tasks, context.config.repairConcurrency, (task) => task());
  for (const [index, outcome] of outcomes.entries()) countOutcome(outcome, index >= repairs.length, counts);
}

function countOutcome(outcome: RepairOutcome, orphan: boolean, counts: ReconcileCounts): void {
  if (outcome === "repaired") {
    counts.repairs_made += 1;
    if (orphan) counts.orphans_removed += 1;
  } else if (outcome === "failed") {
    counts.failures += 1;
  } else {
    counts.instances_skipped += 1;
  }
}

/** Releases the batch and records each contact. An unreachable toolbox counts as a failure. */
async function finishBatch(context: BatchContext, fetched: FetchedInventory[], counts: ReconcileCounts, errors: unknown[]): Promise<void> {
  const results: ContactResult[] = fetched.map((entry) =>
    entry.reachable
      ? { toolbox_id: entry.toolbox.id, reachable: true, agent_version: entry.inventory.agent_version, error: null }
      : { toolbox_id: entry.toolbox.id, reachable: false, agent_version: null, error: entry.error },
  );

  for (const entry of fetched) {
    if (entry.reachable) continue;
    counts.toolboxes_unreachable += 1;
    counts.failures += 1;
    context.logger.warn("agent unreachable", { toolbox_id: entry.toolbox.id, error: entry.error });
    if (errors.length < MAX_RUN_ERRORS) errors.push({ toolbox_id: entry.toolbox.id, code: "agent_unreachable", message: entry.error });
  }

  const finished = await context.store.finishBatch(context.holder, results, context.config.failureThreshold);
  for (const toolbox of finished) counts.instances_marked_unknown += toolbox.instances_marked_unknown;
}

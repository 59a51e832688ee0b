import type { ReconcileCounts, ReconcileResponse } from "@berth/shared";
import type { AgentClientFactory } from "../agents.ts";
import type { InstanceDriver } from "../driver.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../registry.ts";
import { MAX_RUN_ERRORS, fetchBatch, reconcileBatch, type BatchContext } from "./batch.ts";
import type { FetchedInventory } from "./executor.ts";
import type { ReconcileConfig } from "./config.ts";
import { cachedClients } from "./executor.ts";
import type { ReconcileStore } from "./store.ts";

/**
 * One reconciler pass: take the run lease, reconcile batches of toolboxes until none is left
 * or the time budget is spent, and record the counts in reconcile_runs. Every step reads the
 * current state again, so a pass that dies half way is finished by the next one.
 */

export interface PassDependencies {
  store: ReconcileStore;
  registry: Registry;
  driver: InstanceDriver;
  agents: AgentClientFactory;
  config: ReconcileConfig;
  logger: Logger;
  /** Milliseconds clock for the time budget. */
  now?: () => number;
}

export interface ReconcilePass {
  run(): Promise<ReconcileResponse>;
}

/** Creates the pass runner. The agent client cache lives as long as the runner. */
export function createReconcilePass(deps: PassDependencies): ReconcilePass {
  const clientFor = cachedClients(deps.agents);
  return { run: () => runPass(deps, clientFor) };
}

async function runPass(deps: PassDependencies, clientFor: BatchContext["clientFor"]): Promise<ReconcileResponse> {
  const now = deps.now ?? Date.now;
  const started = now();
  const holder = `reconciler:${crypto.randomUUID()}`;

  const lease = await deps.store.beginRun(holder, deps.config.runLeaseSeconds, deps.config.maxConcurrentRuns);
  if (!lease.started) {
    deps.logger.info("reconcile pass skipped: the run lease is held", { holder: lease.holder });
    return { status: "skipped", holder: lease.holder, lease_expires_at: lease.leaseExpiresAt.toISOString() };
  }

  const logger = deps.logger.child({ reconcile_run_id: lease.runId, holder });
  const context: BatchContext = { ...deps, clientFor, holder, logger, policy: policyOf(deps.config, holder) };
  const counts = emptyCounts();
  const errors: unknown[] = [];
  logger.info("reconcile pass started");

  const { complete, broken } = await runBatches(context, lease.runId, counts, errors, () => now() - started);
  let status: "succeeded" | "partial" | "failed" = "succeeded";
  if (counts.failures > 0) status = "partial";
  if (broken) status = "failed";
  await deps.store.finishRun(lease.runId, status, counts, errors);

  const durationMs = Math.max(0, Math.round(now() - started));
  logger.info("reconcile pass finished", { status, complete, duration_ms: durationMs, ...counts });
  return { status, run_id: lease.runId, holder, duration_ms: durationMs, complete, ...counts };
}

/**
 * Claims and reconciles batches until the claim comes back empty (every toolbox done, or the
 * run lease lost) or the time or instance budget is spent. The next batch is claimed and its
 * inventories fetched while the current one is recorded and repaired, so the pass waits on
 * agents and on the database at the same time. An error that breaks a batch ends the pass, and
 * the batch's own cleanup releases its toolbox leases.
 */
async function runBatches(
  context: BatchContext,
  runId: string,
  counts: ReconcileCounts,
  errors: unknown[],
  elapsedMs: () => number,
): Promise<{ complete: boolean; broken: boolean }> {
  const { config } = context;

  let complete = false;
  const claimAndFetch = async (): Promise<FetchedInventory[] | null> => {
    if (elapsedMs() >= config.timeBudgetMs || counts.instances_checked >= config.maxInstancesPerPass) return null;
    const toolboxes = await context.store.claimBatch(runId, context.holder, config.batchSize, config.toolboxLeaseSeconds);
    if (toolboxes.length === 0) complete = true;
    return toolboxes.length === 0 ? null : fetchBatch(context, toolboxes);
  };

  let next = claimAndFetch();
  try {
    for (let fetched = await next; fetched !== null; fetched = await next) {
      next = claimAndFetch();
      await reconcileBatch(context, fetched, counts, errors);
    }
    return { complete, broken: false };
  } catch (error) {
    // NOTE: the batch fetched meanwhile keeps its toolbox leases until they expire
    // (toolboxLeaseSeconds), so the next pass skips those toolboxes until then.
    next.catch(() => {});
    context.logger.error("reconcile pass broke off", { error: describeError(error) });
    if (errors.length < MAX_RUN_ERRORS) errors.push({ code: "pass_failed", message: error instanceof Error ? error.message : String(error) });
    return { complete: false, broken: true };
  }
}

function policyOf(config: ReconcileConfig, holder: string): BatchContext["policy"] {
  return {
    holder,
    stuckAfterSeconds: config.stuckAfterSeconds,
    orphanGraceSeconds: config.orphanGraceSeconds,
    maxRestartAttempts: config.maxRestartAttempts,
  };
}

function emptyCounts(): ReconcileCounts {
  return {
    batches: 0,
    toolboxes_checked: 0,
    toolboxes_unreachable: 0,
    instances_checked: 0,
    instances_skipped: 0,
    instances_marked_unknown: 0,
    drift_found: 0,
    repairs_made: 0,
    failures: 0,
    orphans_removed: 0,
  };
}

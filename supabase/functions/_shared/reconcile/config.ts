import { z } from "zod";

/** Settings of a reconciler pass. Durations carry their unit in the name. */
export interface ReconcileConfig {
  /** Toolboxes claimed per batch; each batch costs a fixed number of SQL statements. */
  batchSize: number;
  /** Inventory requests in flight at once. */
  fetchConcurrency: number;
  /** Repairs (agent calls under an instance lease) in flight at once. */
  repairConcurrency: number;
  /** How long a claimed toolbox stays leased to the pass; must outlast one batch. */
  toolboxLeaseSeconds: number;
  /** How long the run lease lasts without renewal; every batch renews it. */
  runLeaseSeconds: number;
  /** Passes that may run at once; 1 makes every overlapping invocation return `skipped`. */
  maxConcurrentRuns: number;
  /** Wall time after which the pass claims no further batch and leaves the rest to the next pass. */
  timeBudgetMs: number;
  /**
   * Instances after which the pass claims no further batch. It bounds the CPU time of one
   * invocation, because the client's CPU cost grows with the instances a pass checks.
   */
  maxInstancesPerPass: number;
  /** Consecutive failed contacts after which a toolbox is unreachable and its instances unknown. */
  failureThreshold: number;
  stuckAfterSeconds: number;
  orphanGraceSeconds: number;
  maxRestartAttempts: number;
  backoffBaseSeconds: number;
  backoffMaxSeconds: number;
  /** Log lines kept in the event of an instance marked failed for a crash loop. */
  logTailLines: number;
}

const Count = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);

/**
 * The BERTH_RECONCILE_* environment of the reconcile function, with defaults sized for one
 * invocation of a Supabase edge function (2 s of CPU, 150 s of wall time on the free plan).
 */
export const ReconcileEnv = z
  .object({
    BERTH_RECONCILE_BATCH_SIZE: Count(1, 1000, 100),
    BERTH_RECONCILE_FETCH_CONCURRENCY: Count(1, 1000, 64),
    BERTH_RECONCILE_REPAIR_CONCURRENCY: Count(1, 100, 8),
    BERTH_RECONCILE_TOOLBOX_LEASE_SECONDS: Count(5, 3600, 120),
    BERTH_RECONCILE_RUN_LEASE_SECONDS: Count(5, 3600, 120),
    BERTH_RECONCILE_MAX_CONCURRENT_RUNS: Count(1, 100, 1),
    BERTH_RECONCILE_TIME_BUDGET_MS: Count(1000, 3_600_000, 40_000),
    // NOTE: sized from `npm run bench:reconcile` under Node on 2 cores (docs/benchmarks.md): a cold
    // pass used about 175 µs of CPU per instance, so 5,000 instances take about half of the 2 s
    // an edge function may use. The Deno runtime was not measured, and heavy drift costs more.
    BERTH_RECONCILE_MAX_INSTANCES_PER_PASS: Count(1, 10_000_000, 5_000),
    BERTH_RECONCILE_FAILURE_THRESHOLD: Count(1, 100, 3),
    BERTH_RECONCILE_STUCK_AFTER_SECONDS: Count(1, 86_400, 120),
    BERTH_RECONCILE_ORPHAN_GRACE_SECONDS: Count(0, 86_400, 300),
    BERTH_RECONCILE_MAX_RESTART_ATTEMPTS: Count(0, 100, 5),
    BERTH_RECONCILE_BACKOFF_BASE_SECONDS: Count(1, 3600, 10),
    BERTH_RECONCILE_BACKOFF_MAX_SECONDS: Count(1, 86_400, 300),
    BERTH_RECONCILE_LOG_TAIL_LINES: Count(1, 1000, 50),
  })
  .refine((env) => env.BERTH_RECONCILE_BACKOFF_BASE_SECONDS <= env.BERTH_RECONCILE_BACKOFF_MAX_SECONDS, {
    message: "must not be below BERTH_RECONCILE_BACKOFF_BASE_SECONDS",
    path: ["BERTH_RECONCILE_BACKOFF_MAX_SECONDS"],
  });

/** Parses the reconciler settings; the error names each invalid variable but never a value. */
export function parseReconcileConfig(source: Record<string, string | undefined>): ReconcileConfig {
  const result = ReconcileEnv.safeParse(source);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new Error(`invalid reconciler environment: ${problems.join("; ")}`);
  }
  const env = result.data;

  return {
    batchSize: env.BERTH_RECONCILE_BATCH_SIZE,
    fetchConcurrency: env.BERTH_RECONCILE_FETCH_CONCURRENCY,
    repairConcurrency: env.BERTH_RECONCILE_REPAIR_CONCURRENCY,
    toolboxLeaseSeconds: env.BERTH_RECONCILE_TOOLBOX_LEASE_SECONDS,
    runLeaseSeconds: env.BERTH_RECONCILE_RUN_LEASE_SECONDS,
    maxConcurrentRuns: env.BERTH_RECONCILE_MAX_CONCURRENT_RUNS,
    timeBudgetMs: env.BERTH_RECONCILE_TIME_BUDGET_MS,
    maxInstancesPerPass: env.BERTH_RECONCILE_MAX_INSTANCES_PER_PASS,
    failureThreshold: env.BERTH_RECONCILE_FAILURE_THRESHOLD,
    stuckAfterSeconds: env.BERTH_RECONCILE_STUCK_AFTER_SECONDS,
    orphanGraceSeconds: env.BERTH_RECONCILE_ORPHAN_GRACE_SECONDS,
    maxRestartAttempts: env.BERTH_RECONCILE_MAX_RESTART_ATTEMPTS,
    backoffBaseSeconds: env.BERTH_RECONCILE_BACKOFF_BASE_SECONDS,
    backoffMaxSeconds: env.BERTH_RECONCILE_BACKOFF_MAX_SECONDS,
    logTailLines: env.BERTH_RECONCILE_LOG_TAIL_LINES,
  };
}

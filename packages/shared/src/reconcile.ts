import { z } from "zod";

/**
 * The contract of `POST /reconcile`, the reconciler pass that pg_cron invokes with the service
 * role key. One pass claims toolboxes in batches, compares each agent's inventory with the
 * database and repairs the drift it finds.
 */

/** Body of `POST /reconcile`. pg_cron sends `{"source": "pg_cron"}`; every field is optional. */
export const ReconcileRequest = z
  .object({
    /** Caller that requested the pass, such as `pg_cron`. Only logged. */
    source: z.string().max(100).optional(),
  })
  .default({});
export type ReconcileRequest = z.infer<typeof ReconcileRequest>;

const Count = z.int().min(0);

/** Counts of what one pass checked, found and repaired. */
export const ReconcileCounts = z.object({
  batches: Count,
  toolboxes_checked: Count,
  /** Toolboxes whose agent did not return an inventory in time. Their instances were not repaired. */
  toolboxes_unreachable: Count,
  instances_checked: Count,
  /** Instances left for a later pass: leased by another operation, or waiting out a back-off. */
  instances_skipped: Count,
  /** Instances marked unknown because their toolbox crossed the failure threshold. */
  instances_marked_unknown: Count,
  drift_found: Count,
  repairs_made: Count,
  /** Repairs that failed plus toolboxes that could not be reached. */
  failures: Count,
  orphans_removed: Count,
});
export type ReconcileCounts = z.infer<typeof ReconcileCounts>;

/** Response of a pass that ran: `partial` when some repair or agent failed, `failed` when the pass itself broke. */
export const ReconcileRunResponse = ReconcileCounts.extend({
  status: z.enum(["succeeded", "partial", "failed"]),
  run_id: z.guid(),
  holder: z.string(),
  duration_ms: Count,
  /** False when the pass stopped at its time budget with toolboxes left for the next one. */
  complete: z.boolean(),
});
export type ReconcileRunResponse = z.infer<typeof ReconcileRunResponse>;

/** Response of an invocation that found the run lease held: it wrote nothing. */
export const ReconcileSkippedResponse = z.object({
  status: z.literal("skipped"),
  /** The pass that holds the run lease. */
  holder: z.string(),
  lease_expires_at: z.iso.datetime({ offset: true }),
});
export type ReconcileSkippedResponse = z.infer<typeof ReconcileSkippedResponse>;

/** Response of `POST /reconcile`. */
export const ReconcileResponse = z.discriminatedUnion("status", [ReconcileRunResponse, ReconcileSkippedResponse]);
export type ReconcileResponse = z.infer<typeof ReconcileResponse>;

import type { InstanceObservation, InstanceStatus, ReasonCode, ToolboxStatus } from "@berth/shared";
import type { Sql } from "../db.ts";
import { databaseErrorToApiError, toInstance, toToolbox, type InstanceRow, type ToolboxRow } from "../registry.ts";
import type { OrphanSighting, ReconcileInstance } from "./types.ts";

/**
 * The reconciler's batched SQL. Each method is one statement whatever the batch size, so a
 * pass costs a few statements per batch plus one or two per repair, never one per instance.
 */

export type RunLease =
  | { started: true; runId: string; holder: string; leaseExpiresAt: Date }
  | { started: false; holder: string; leaseExpiresAt: Date };

/** Inventory of one reachable toolbox, as sent to record_reconcile_batch. */
export interface InventoryReport {
  toolbox_id: string;
  instances: InstanceObservation[];
}

export interface RecordedBatch {
  /** Database clock when the batch was recorded; the plan's notion of now. */
  now: Date;
  /** Toolboxes this pass still held when it recorded; the others were ignored. */
  held: string[];
  /** Instance rows whose observation changed and was written. */
  written: number;
  /** Live instances the statement found in sync and left out of `instances`. */
  quiet: number;
  /**
   * Live instances written at or after their toolbox was claimed, so possibly after its
   * inventory was fetched. Nothing was recorded on them, and they are left out of `instances`.
   */
  deferred: number;
  /** Every other live instance of the batch, for the plan. */
  instances: ReconcileInstance[];
  orphans: OrphanSighting[];
}

export interface StatusUpdate {
  instance_id: string;
  expected_version: number;
  status: InstanceStatus;
  reason_code: ReasonCode;
  message: string;
  details?: Record<string, unknown>;
}

export interface ContactResult {
  toolbox_id: string;
  reachable: boolean;
  agent_version: string | null;
  error: string | null;
}

export interface FinishedToolbox {
  toolbox_id: string;
  status: ToolboxStatus;
  consecutive_failures: number;
  instances_marked_unknown: number;
}

export interface RunTotals {
  toolboxes_checked: number;
  instances_checked: number;
  drift_found: number;
  repairs_made: number;
  failures: number;
}

export interface ReconcileStore {
  beginRun(holder: string, ttlSeconds: number, maxConcurrent: number): Promise<RunLease>;
  claimBatch(runId: string, holder: string, batchSize: number, ttlSeconds: number): Promise<ToolboxRow[]>;
  recordBatch(holder: string, reports: InventoryReport[]): Promise<RecordedBatch>;
  applyStatuses(holder: string, updates: StatusUpdate[]): Promise<{ instance_id: string; applied: boolean }[]>;
  /** Reads whole rows of the instances a batch repairs. */
  loadInstances(ids: string[]): Promise<InstanceRow[]>;
  recordEvent(instanceId: string, reason: ReasonCode, message: string, details: Record<string, unknown>): Promise<void>;
  finishBatch(holder: string, results: ContactResult[], failureThreshold: number): Promise<FinishedToolbox[]>;
  finishRun(runId: string, status: "succeeded" | "partial" | "failed", totals: RunTotals, errors: unknown[]): Promise<void>;
}

/** Creates the store on a client that connects as the database owner (SUPABASE_DB_URL). */
export function createReconcileStore(sql: Sql): ReconcileStore {
  return {
    beginRun: (holder, ttlSeconds, maxConcurrent) => guarded(() => beginRun(sql, holder, ttlSeconds, maxConcurrent)),
    claimBatch: (runId, holder, batchSize, ttlSeconds) =>
      guarded(async () => {
        const rows = await sql`select * from berth_private.claim_reconcile_batch(${runId}, ${holder}, ${batchSize}, ${ttlSeconds})`;
        return rows.map((row) => toToolbox(row));
      }),
    recordBatch: (holder, reports) => guarded(() => recordBatch(sql, holder, reports)),
    applyStatuses: (holder, updates) =>
      guarded(async () => {
        const rows = await sql<{ instance_id: string; applied: boolean }[]>`
          select instance_id, applied from berth_private.apply_reconcile_statuses(${holder}, ${jsonParameter(sql, updates)})`;
        return [...rows];
      }),
    loadInstances: (ids) =>
      guarded(async () => {
        const rows = await sql`select * from public.tool_instances where id = any(${sql.array(ids)}::uuid[])`;
        return rows.map((row) => toInstance(row));
      }),
    recordEvent: (instanceId, reason, message, details) =>
      guarded(async () => {
        await sql`select 1 from berth_private.record_reconcile_event(${instanceId}, ${reason}, ${message}, ${jsonParameter(sql, details)})`;
      }),
    finishBatch: (holder, results, failureThreshold) =>
      guarded(async () => {
        const rows = await sql<FinishedToolbox[]>`
          select * from berth_private.finish_reconcile_batch(${holder}, ${jsonParameter(sql, results)}, ${failureThreshold})`;
        return [...rows];
      }),
    finishRun: (runId, status, totals, errors) =>
      guarded(async () => {
        await sql`
          select 1 from berth_private.finish_reconcile_run(
            ${runId}, ${status}, ${totals.toolboxes_checked}, ${totals.instances_checked}, ${totals.drift_found},
            ${totals.repairs_made}, ${totals.failures}, ${jsonParameter(sql, errors)})`;
      }),
  };
}

async function beginRun(sql: Sql, holder: string, ttlSeconds: number, maxConcurrent: number): Promise<RunLease> {
  const [row] = await sql<{ run_id: string; started: boolean; holder: string; lease_expires_at: Date }[]>`
    select * from berth_private.begin_reconcile_run(${holder}, ${ttlSeconds}, ${maxConcurrent})`;
  if (row === undefined) throw new Error("begin_reconcile_run returned no row");

  if (row.started) return { started: true, runId: row.run_id, holder: row.holder, leaseExpiresAt: row.lease_expires_at };
  return { started: false, holder: row.holder, leaseExpiresAt: row.lease_expires_at };
}

interface RawRecordedBatch {
  now: string;
  held: string[];
  written: number;
  quiet: number;
  deferred: number;
  instances: ReconcileInstance[];
  orphans: OrphanSighting[];
}

async function recordBatch(sql: Sql, holder: string, reports: InventoryReport[]): Promise<RecordedBatch> {
  const [row] = await sql<{ batch: RawRecordedBatch }[]>`
    select berth_private.record_reconcile_batch(${holder}, ${jsonParameter(sql, reports)}) as batch`;
  const batch = row!.batch;
  return { ...batch, now: new Date(batch.now) };
}

/**
 * Wraps a value as a jsonb parameter. postgres.js serializes it once when it sends the
 * statement, which keeps the client's CPU per instance low. The cast only satisfies the type
 * of `sql.json`, which expects its own JSON value type.
 */
function jsonParameter(sql: Sql, value: unknown) {
  return sql.json(value as never);
}

async function guarded<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw databaseErrorToApiError(error);
  }
}

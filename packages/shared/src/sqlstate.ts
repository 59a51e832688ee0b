import type { ErrorCode } from "./errors.ts";

/**
 * SQLSTATEs raised by Berth's SQL functions and triggers. Class BT is Berth's own, and 22023
 * (invalid_parameter_value) carries the offending column in the error's COLUMN field and in
 * DETAIL as `column=<name>`. Callers branch on these codes, never on message text.
 */
export const SQLSTATE = {
  /** A status change that berth_private.instance_status_transitions does not allow. */
  invalidTransition: "BT001",
  /** The row changed since the caller read it (expected version is stale). */
  versionConflict: "BT002",
  /** Another holder has an unexpired lease on the instance. */
  leaseHeld: "BT003",
  /** The presented lease nonce is not current or the lease expired. */
  leaseLost: "BT004",
  /** No free host port is left in the toolbox's range. */
  portsExhausted: "BT005",
  instanceNotFound: "BT006",
  /** Missing, or owned by someone else. */
  toolboxNotFound: "BT007",
  /** The name is already used by a live instance on the toolbox, or by another toolbox of the owner. */
  nameTaken: "BT008",
  /** The toolbox is draining or decommissioned. */
  toolboxUnavailable: "BT009",
  /** Decommissioning a toolbox that still has instances that are not removed. */
  toolboxNotEmpty: "BT010",
  /** An idempotency key reused with a different request. */
  idempotencyKeyReused: "BT011",
  /** The instance is removed, which is final. */
  instanceRemoved: "BT012",
  /** An update, delete or truncate of the append-only instance_events. */
  eventsAppendOnly: "BT013",
  /** The first request with this idempotency key has not completed yet. */
  requestInProgress: "BT014",
  reconcileRunNotFound: "BT015",
  idempotencyKeyNotFound: "BT016",
  invalidParameterValue: "22023",
} as const;

export type SqlState = (typeof SQLSTATE)[keyof typeof SQLSTATE];

/** API error code for each Berth SQLSTATE; anything else is an internal error. */
export const SQLSTATE_ERROR_CODE: Readonly<Record<SqlState, ErrorCode>> = {
  BT001: "invalid_transition",
  BT002: "version_conflict",
  BT003: "lease_held",
  BT004: "lease_lost",
  BT005: "ports_exhausted",
  BT006: "instance_not_found",
  BT007: "toolbox_not_found",
  BT008: "name_taken",
  BT009: "toolbox_unavailable",
  BT010: "toolbox_not_empty",
  BT011: "idempotency_key_reused",
  BT012: "conflict",
  BT013: "internal_error",
  BT014: "request_in_progress",
  BT015: "internal_error",
  BT016: "internal_error",
  "22023": "invalid_request",
};

/** Maps the SQLSTATE of a database error to an API error code (internal_error when unknown). */
export function errorCodeForSqlState(sqlState: string | undefined): ErrorCode {
  return (SQLSTATE_ERROR_CODE as Record<string, ErrorCode>)[sqlState ?? ""] ?? "internal_error";
}

import { z } from "zod";

/**
 * Stable error codes returned by the agent and the edge functions, with the HTTP status
 * each one maps to. Clients branch on the code, never on the message.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  instance_not_found: 404,
  toolbox_not_found: 404,
  image_not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  lease_held: 409,
  lease_lost: 409,
  name_taken: 409,
  request_in_progress: 409,
  toolbox_unavailable: 409,
  port_in_use: 409,
  toolbox_not_empty: 409,
  version_conflict: 409,
  invalid_transition: 409,
  payload_too_large: 413,
  idempotency_key_reused: 422,
  ports_exhausted: 507,
  agent_error: 502,
  agent_unreachable: 503,
  function_unavailable: 503,
  engine_unavailable: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ErrorCodeSchema = z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]);

/** The JSON body of every error response: `{"error": {"code", "message", "details"}}`. */
export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Returns the HTTP status for a code, or 500 for a code this version does not know. */
export function httpStatusFor(code: string): number {
  return (ERROR_STATUS as Record<string, number>)[code] ?? 500;
}

/** Builds an error body; `details` is left out when undefined so responses stay small. */
export function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return details === undefined
    ? { error: { code, message } }
    : { error: { code, message, details } };
}

import { errorBody, httpStatusFor, type ErrorCode } from "@berth/shared";
import type { Logger } from "./log.ts";

/** An error with a stable code that a handler may show to its caller as it is. */
export class ApiError extends Error {
  override name = "ApiError";

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }

  get status(): number {
    return httpStatusFor(this.code);
  }
}

/**
 * Turns any thrown value into a JSON error response. ApiErrors keep their code and message;
 * anything else is logged with its stack and returned as a generic 500, because a raw
 * exception message can carry SQL, hostnames or secrets.
 */
export function errorResponse(error: unknown, logger: Logger, headers: HeadersInit = {}): Response {
  if (error instanceof ApiError) {
    if (error.status >= 500) logger.warn("request failed", { code: error.code, error: error.message });
    return Response.json(errorBody(error.code, error.message, error.details), { status: error.status, headers });
  }

  logger.error("unexpected error", { error: describeError(error) });
  return Response.json(errorBody("internal_error", "internal error; the request id in the logs has the details"), {
    status: 500,
    headers,
  });
}

/** Returns name, message and stack of an error for a log line. */
export function describeError(error: unknown): Record<string, unknown> {
  if (error instanceof Error) return { name: error.name, message: error.message, stack: error.stack };
  return { message: String(error) };
}

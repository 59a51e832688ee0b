import { ApiError, errorResponse } from "./errors.ts";
import { CORS_HEADERS } from "./http.ts";
import type { Logger } from "./log.ts";

/** State of one request: its ids, a logger bound to it, and the ids its summary line reports. */
export interface RequestContext {
  /** Id for logs and the `x-request-id` header; the caller may choose it, so it is not unique. */
  requestId: string;
  /** A UUID generated for this request alone, for what must be unique per request, such as lease holders. */
  operationId: string;
  log: Logger;
  /** Ids and outcome for the summary line (user_id, instance_id, toolbox_id, outcome). Never secrets. */
  fields: Record<string, unknown>;
}

export type Route = (request: Request, context: RequestContext) => Promise<Response>;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Wraps a function's routes with what every request gets. OPTIONS returns the CORS preflight.
 * Each request gets an id (the caller's `x-request-id` when it is a plain token, else a new
 * UUID) that the response echoes. Errors become JSON through `errorResponse`. One summary log
 * line per request states method, path, status, outcome, duration and the ids in `context.fields`.
 */
export function serveRoutes(functionName: string, logger: Logger, route: Route): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method === "OPTIONS") return new Response(null, { status: 204, headers: CORS_HEADERS });

    const started = Date.now();
    const requestId = requestIdOf(request);
    const operationId = crypto.randomUUID();
    const log = logger.child({ function: functionName, request_id: requestId, operation_id: operationId });
    const context: RequestContext = { requestId, operationId, log, fields: {} };
    const headers = { ...CORS_HEADERS, "x-request-id": requestId };

    let response: Response;
    try {
      response = await route(request, context);
    } catch (error) {
      context.fields.outcome ??= error instanceof ApiError ? error.code : "internal_error";
      response = errorResponse(error, context.log.child(context.fields), headers);
    }

    const path = new URL(request.url).pathname;
    context.log.info("request finished", { method: request.method, path, status: response.status, duration_ms: Date.now() - started, ...context.fields });
    return withHeaders(response, headers);
  };
}

function requestIdOf(request: Request): string {
  const given = request.headers.get("x-request-id");
  return given !== null && REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

function withHeaders(response: Response, headers: Record<string, string>): Response {
  const merged = new Headers(response.headers);
  for (const [key, value] of Object.entries(headers)) merged.set(key, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers: merged });
}

/** Raises 405 for a known path called with a method it does not serve. */
export function methodNotAllowed(request: Request, allowed: string[]): never {
  throw new ApiError("method_not_allowed", `${request.method} is not allowed here; use ${allowed.join(" or ")}`);
}

/** Raises 404 for a path the function does not serve. */
export function routeNotFound(request: Request): never {
  throw new ApiError("not_found", `no route for ${request.method} ${new URL(request.url).pathname}`);
}

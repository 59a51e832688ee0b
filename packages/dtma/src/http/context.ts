import { randomUUID } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";
import { errorBody, httpStatusFor } from "@berth/shared";
import { EngineError } from "../engine/engine.ts";
import { AgentError, agentErrorFromEngine } from "../errors.ts";

/** Hono variables of every request: a logger bound to the request id and, later, the instance id. */
export interface AgentEnv {
  Variables: { log: Logger; requestId: string; errorCode?: string };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Binds a request id (the caller's `X-Request-Id` when it is well formed, a new UUID otherwise)
 * to a child logger, echoes it in the response and logs one line per completed request.
 */
export function requestContext(logger: Logger): MiddlewareHandler<AgentEnv> {
  return async (c, next) => {
    const started = performance.now();
    const offered = c.req.header("x-request-id");
    const requestId = offered !== undefined && REQUEST_ID.test(offered) ? offered : randomUUID();
    c.set("requestId", requestId);
    c.set("log", logger.child({ request_id: requestId }));
    c.header("X-Request-Id", requestId);

    await next();

    const fields = {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      error_code: c.var.errorCode,
      duration_ms: Math.round(performance.now() - started),
    };
    // Health probes arrive every few seconds, so they are logged only at debug level.
    if (c.req.path === "/healthz") {
      c.var.log.debug(fields, "request completed");
    } else {
      c.var.log.info(fields, "request completed");
    }
  };
}

/** Sends the JSON error body for any thrown value and logs what the caller does not see. */
export function sendError(c: Context<AgentEnv>, error: unknown): Response {
  const agentError = toAgentError(error, c.var.log);
  c.set("errorCode", agentError.code);
  return c.json(errorBody(agentError.code, agentError.message, agentError.details), httpStatusFor(agentError.code) as ContentfulStatusCode);
}

function toAgentError(error: unknown, log: Logger): AgentError {
  if (error instanceof AgentError) {
    return error;
  }
  if (error instanceof EngineError) {
    const mapped = agentErrorFromEngine(error);
    const level = mapped.code === "internal_error" ? "error" : "warn";
    log[level]({ err: error, engine_status: error.statusCode, error_kind: error.kind }, "container engine call failed");
    return mapped;
  }
  log.error({ err: error }, "unexpected error while handling request");
  return new AgentError("internal_error", "The agent failed to handle the request; see the agent log.");
}

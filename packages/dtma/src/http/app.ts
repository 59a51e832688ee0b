import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Logger } from "pino";
import {
  DTMA_LOGS_DEFAULT_TAIL,
  DTMA_MAX_BODY_BYTES,
  InstanceEnsureRequest,
  InstanceLogsQuery,
  InstancePathParams,
  fieldErrorMap,
  fieldIssues,
  type HealthResponse,
  type InventoryResponse,
} from "@berth/shared";
import type { Config } from "../config.ts";
import type { Engine } from "../engine/engine.ts";
import { AgentError } from "../errors.ts";
import { InstanceService } from "../instances.ts";
import { AGENT_VERSION } from "../version.ts";
import { bearerAuth } from "./auth.ts";
import { requestContext, sendError, type AgentEnv } from "./context.ts";

export type AppConfig = Pick<Config, "token" | "toolboxId" | "publishIp" | "stopTimeoutSeconds">;

export interface AppDependencies {
  engine: Engine;
  config: AppConfig;
  logger: Logger;
}

/** Builds the agent's HTTP routes. It does not listen; `serveAgent` or a test does that. */
export function createApp({ engine, config, logger }: AppDependencies): Hono<AgentEnv> {
  const service = new InstanceService({
    engine,
    toolboxId: config.toolboxId,
    publishIp: config.publishIp,
    stopTimeoutSeconds: config.stopTimeoutSeconds,
  });
  const app = new Hono<AgentEnv>();

  app.use("*", requestContext(logger));
  app.get("/healthz", (c) => c.json({ status: "ok", agent_version: AGENT_VERSION } satisfies HealthResponse));

  app.use("/v1/*", bearerAuth(config.token));
  app.use("/v1/*", bodyLimit({ maxSize: DTMA_MAX_BODY_BYTES, onError: rejectLargeBody }));
  addInstanceRoutes(app, engine, service);

  app.all("/healthz", methodNotAllowed);
  app.all("/v1/inventory", methodNotAllowed);
  app.all("/v1/instances/:id", methodNotAllowed);
  app.all("/v1/instances/:id/:action{start|stop|restart|logs}", methodNotAllowed);
  app.notFound((c) => sendError(c, new AgentError("not_found", `No route for ${c.req.method} ${c.req.path}.`)));
  app.onError((error, c) => sendError(c, error));
  return app;
}

function addInstanceRoutes(app: Hono<AgentEnv>, engine: Engine, service: InstanceService): void {
  app.get("/v1/inventory", async (c) => {
    const [engineVersion, instances] = await Promise.all([engine.version(), service.observeAll()]);
    const body: InventoryResponse = { agent_version: AGENT_VERSION, engine_version: engineVersion, instances };
    return c.json(body);
  });

  app.put("/v1/instances/:id", async (c) => {
    const id = instanceIdParam(c);
    const spec = parseBody(await readJson(c));
    const result = await service.ensure(id, spec, c.var.log);
    return c.json(result.observation, result.created ? 201 : 200);
  });

  app.post("/v1/instances/:id/start", async (c) => c.json(await service.start(instanceIdParam(c), c.var.log)));
  app.post("/v1/instances/:id/stop", async (c) => c.json(await service.stop(instanceIdParam(c), c.var.log)));
  app.post("/v1/instances/:id/restart", async (c) => c.json(await service.restart(instanceIdParam(c), c.var.log)));

  app.delete("/v1/instances/:id", async (c) => {
    await service.remove(instanceIdParam(c), c.var.log);
    return c.body(null, 204);
  });

  app.get("/v1/instances/:id/logs", async (c) => {
    const id = instanceIdParam(c);
    const query = InstanceLogsQuery.safeParse({ tail: c.req.query("tail") }, { error: fieldErrorMap });
    if (!query.success) {
      throw invalidRequest(query.error);
    }
    return c.json(await service.logs(id, query.data.tail ?? DTMA_LOGS_DEFAULT_TAIL, c.var.log));
  });
}

/** Validates the `:id` path parameter and binds it to the request's logger. */
function instanceIdParam(c: Context<AgentEnv>): string {
  const parsed = InstancePathParams.safeParse({ id: c.req.param("id") }, { error: fieldErrorMap });
  if (!parsed.success) {
    throw invalidRequest(parsed.error);
  }
  const id = parsed.data.id.toLowerCase();
  c.set("log", c.var.log.child({ instance_id: id }));
  return id;
}

async function readJson(c: Context<AgentEnv>): Promise<unknown> {
  const text = await c.req.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // The parser's message quotes part of the body, which may contain secrets, so it is not returned.
    const reason = text.trim() === "" ? "is empty" : "is not valid JSON";
    throw new AgentError("invalid_request", `The request body ${reason}.`, {
      fields: [{ field: "body", message: `must be a JSON object; it ${reason}` }],
    });
  }
}

function parseBody(body: unknown): InstanceEnsureRequest {
  const parsed = InstanceEnsureRequest.safeParse(body, { error: fieldErrorMap });
  if (!parsed.success) {
    throw invalidRequest(parsed.error);
  }
  return parsed.data;
}

function invalidRequest(error: Parameters<typeof fieldIssues>[0]): AgentError {
  const fields = fieldIssues(error);
  const names = [...new Set(fields.map((issue) => issue.field))].join(", ");
  return new AgentError("invalid_request", `Invalid request: check ${names}.`, { fields });
}

function rejectLargeBody(c: Context<AgentEnv>): Response {
  return sendError(
    c,
    new AgentError("payload_too_large", `The request body is larger than ${DTMA_MAX_BODY_BYTES} bytes.`, {
      max_bytes: DTMA_MAX_BODY_BYTES,
    }),
  );
}

function methodNotAllowed(c: Context<AgentEnv>): Response {
  return sendError(c, new AgentError("method_not_allowed", `${c.req.method} is not allowed on ${c.req.path}.`));
}

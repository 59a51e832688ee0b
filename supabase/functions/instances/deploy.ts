import { InstanceDeployRequest } from "@berth/shared";
import { ApiError, errorResponse } from "../_shared/errors.ts";
import { json, readJson } from "../_shared/http.ts";
import type { ToolboxRow } from "../_shared/registry.ts";
import { driveResponse } from "./actions.ts";
import type { InstancesContext } from "./handler.ts";

/** Database columns whose request field has another name, for `invalid_request` details. */
const FIELD_OF_COLUMN: Readonly<Record<string, string>> = {
  container_port: "port",
  secret_names: "secrets",
  toolbox_id: "toolbox_id",
};

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * Deploys an instance: validates the body, checks the toolbox, creates the row (pending, with a
 * host port and the secrets stored apart) and drives it. Returns 201 when the agent finished
 * and 202 when its call timed out. With an `Idempotency-Key` header, a repeated request with the
 * same body returns the first result instead of deploying again.
 */
export async function deployInstance(request: Request, context: InstancesContext): Promise<Response> {
  const body = await readJson(request, InstanceDeployRequest);
  const toolbox = await requireDeployTarget(body.toolbox_id, context);
  context.request.fields.toolbox_id = toolbox.id;

  const key = idempotencyKey(request);
  if (key === null) return createAndDrive(body, toolbox, context);

  const { registry } = context.deps;
  const started = await registry.beginIdempotentRequest(context.userId, key, await requestHash(body));
  if (started.response_status !== null) {
    context.request.fields.outcome = "replayed";
    return json(started.response_status, started.response, { "idempotent-replayed": "true" });
  }

  // Every failure completes the key, an unexpected one with the generic 500 that errorResponse
  // logs and returns. Otherwise the key stays in progress and retries get 409 for 300 seconds.
  const response = await createAndDrive(body, toolbox, context).catch((error: unknown) => {
    context.request.fields.outcome = error instanceof ApiError ? error.code : "internal_error";
    return errorResponse(error, context.request.log.child(context.request.fields));
  });
  // NOTE: when this write fails too, the key stays in progress until it turns stale.
  await registry.completeIdempotentRequest(context.userId, key, response.status, await response.clone().json());
  return response;
}

/** Returns the caller's toolbox, or 400 naming `toolbox_id` when it is missing or someone else's. */
async function requireDeployTarget(toolboxId: string, context: InstancesContext): Promise<ToolboxRow> {
  const toolbox = await context.deps.registry.getToolbox(toolboxId);
  if (toolbox === null || toolbox.owner_id !== context.userId) {
    throw new ApiError("invalid_request", `invalid request body: toolbox_id ${toolboxId} is not one of your toolboxes`, {
      fields: [{ field: "toolbox_id", message: "must be the id of one of your toolboxes" }],
    });
  }
  return toolbox;
}

async function createAndDrive(body: InstanceDeployRequest, toolbox: ToolboxRow, context: InstancesContext): Promise<Response> {
  const created = await context.deps.registry
    .createInstance({
      ownerId: context.userId,
      toolboxId: toolbox.id,
      name: body.name,
      image: body.image,
      containerPort: body.port,
      env: body.env,
      secrets: body.secrets,
      command: body.command,
      mcpPath: body.mcp_path,
    })
    .catch((error: unknown) => {
      throw renameFields(error);
    });
  context.request.fields.instance_id = created.id;

  const result = await context.driver.drive(created, toolbox, {
    action: "deploy",
    actor: "user",
    holder: `user:${context.request.operationId}`,
    reason: "DeployRequested",
  });
  return driveResponse(result, toolbox, 201, context);
}

/** Renames database columns in `invalid_request` details to the request's field names. */
function renameFields(error: unknown): unknown {
  if (!(error instanceof ApiError) || error.code !== "invalid_request") return error;
  const details = error.details as { fields?: { field: string; message: string }[] } | undefined;
  const fields = details?.fields?.map((issue) => ({ ...issue, field: FIELD_OF_COLUMN[issue.field] ?? issue.field }));
  return new ApiError(error.code, error.message, { ...details, fields });
}

function idempotencyKey(request: Request): string | null {
  const key = request.headers.get("idempotency-key");
  if (key === null) return null;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new ApiError("invalid_request", "invalid Idempotency-Key header: use 1 to 255 visible ASCII characters", {
      fields: [{ field: "Idempotency-Key", message: "must be 1 to 255 visible ASCII characters" }],
    });
  }
  return key;
}

/**
 * Hashes the validated body with SHA-256, so a key reused with another body is rejected with
 * 422 `idempotency_key_reused`. Keys are sorted so the order of fields does not matter.
 */
async function requestHash(body: InstanceDeployRequest): Promise<string> {
  const canonical = JSON.stringify(sortKeys(body));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`POST /instances\n${canonical}`));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;

  const names = Object.keys(value).sort();
  return Object.fromEntries(names.map((name) => [name, sortKeys((value as Record<string, unknown>)[name])]));
}

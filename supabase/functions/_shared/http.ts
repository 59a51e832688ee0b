import { z } from "zod";
import { fieldErrorMap, fieldIssues } from "@berth/shared";
import { ApiError } from "./errors.ts";

/** Maximum JSON body a function accepts, in bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/** CORS headers for browser callers of the user APIs, as supabase-js sends them. */
export const CORS_HEADERS: Record<string, string> = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "authorization, x-client-info, apikey, content-type, idempotency-key",
  "access-control-allow-methods": "GET, POST, PUT, DELETE, OPTIONS",
};

export function json(status: number, body: unknown, headers: HeadersInit = {}): Response {
  return Response.json(body, { status, headers: { ...CORS_HEADERS, ...Object.fromEntries(new Headers(headers)) } });
}

/**
 * Reads and validates a JSON body of at most `maxBytes`. Errors name the offending field in
 * `details.fields`, so the caller can fix the value without guessing.
 */
export async function readJson<T extends z.ZodType>(request: Request, schema: T, maxBytes = MAX_BODY_BYTES): Promise<z.infer<T>> {
  const text = await readBodyText(request, maxBytes);
  let parsed: unknown;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch {
    throw new ApiError("invalid_request", "request body is not valid JSON", { fields: [{ field: "body", message: "must be valid JSON" }] });
  }
  return parseInput(schema, parsed, "request body");
}

/** Validates input that came from a path, query or body and raises `invalid_request` naming the fields. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(input, { error: fieldErrorMap });
  if (result.success) return result.data;

  const fields = fieldIssues(result.error);
  const summary = fields.map((issue) => `${issue.field} ${issue.message}`).join("; ");
  throw new ApiError("invalid_request", `invalid ${what}: ${summary}`, { fields });
}

async function readBodyText(request: Request, maxBytes: number): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);

  const bytes = new Uint8Array(await request.arrayBuffer());
  if (bytes.byteLength > maxBytes) throw tooLarge(maxBytes);
  return new TextDecoder().decode(bytes);
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError("payload_too_large", `request body is larger than ${maxBytes} bytes`, {
    fields: [{ field: "body", message: `must be at most ${maxBytes} bytes` }],
  });
}

/**
 * Splits a function URL into the segments after the function's own name. Supabase passes the
 * path as `/<function>/...`; a path without the function name is accepted as well.
 */
export function routeSegments(request: Request, functionName: string): string[] {
  const segments = new URL(request.url).pathname.split("/").filter((segment) => segment !== "");
  const start = segments.indexOf(functionName);
  return start === -1 ? segments : segments.slice(start + 1);
}

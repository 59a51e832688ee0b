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
  const parsed = await readJsonValue(request, maxBytes);
  rejectUnstorableText(parsed);
  return parseInput(schema, parsed, "request body");
}

/** Reads a body of at most `maxBytes` and parses it as JSON, without any schema; empty is undefined. */
export async function readJsonValue(request: Request, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const text = await readBodyText(request, maxBytes);
  try {
    return text === "" ? undefined : JSON.parse(text);
  } catch {
    throw new ApiError("invalid_request", "request body is not valid JSON", { fields: [{ field: "body", message: "must be valid JSON" }] });
  }
}

const UNSTORABLE_TEXT = /[\u0000\p{Cs}]/u;

/** Maximum number of fields listed in one error, so the error for a body full of bad strings stays short. */
const MAX_REPORTED_FIELDS = 20;

interface FieldIssue {
  field: string;
  message: string;
}

/** A value met while walking a JSON body; paths are built from parent links only on error. */
interface JsonNode {
  value: unknown;
  key: string | null;
  parent: JsonNode | null;
}

/**
 * Raises `invalid_request` for text in a parsed JSON body that cannot be stored as sent. JSON
 * escapes can encode NUL and unpaired surrogates (`"\\ud800"`), which PostgreSQL rejects with
 * the value in its log, and JSON.parse creates a `__proto__` key that objects built from it
 * drop. Every string and key is checked, at any depth; messages name fields, never values.
 */
export function rejectUnstorableText(value: unknown): void {
  const fields: FieldIssue[] = [];
  // An explicit stack rather than recursion, because a 1 MiB body can nest deeper than the call stack allows.
  const pending: JsonNode[] = [{ value, key: null, parent: null }];

  for (let node = pending.pop(); node !== undefined && fields.length < MAX_REPORTED_FIELDS; node = pending.pop()) {
    if (typeof node.value === "string" && UNSTORABLE_TEXT.test(node.value)) {
      fields.push({ field: fieldName(node), message: "must not contain NUL characters or unpaired UTF-16 surrogates" });
    }
    if (node.value === null || typeof node.value !== "object") continue;

    for (const [key, child] of Object.entries(node.value)) {
      const issue = keyIssue(node, key);
      if (issue === null) pending.push({ value: child, key, parent: node });
      else fields.push(issue);
    }
  }

  if (fields.length === 0) return;
  const summary = fields.map((issue) => `${issue.field} ${issue.message}`).join("; ");
  throw new ApiError("invalid_request", `invalid request body: ${summary}`, { fields });
}

function keyIssue(parent: JsonNode, key: string): FieldIssue | null {
  if (key === "__proto__") return { field: fieldName({ value: null, key, parent }), message: "is a reserved name; use another name" };
  if (UNSTORABLE_TEXT.test(key)) return { field: fieldName(parent), message: "must not have names with NUL characters or unpaired UTF-16 surrogates" };
  return null;
}

/** Names a field by its dotted path, such as `env.A` or `command.0`, as zod issues do. */
function fieldName(node: JsonNode): string {
  const keys: string[] = [];
  for (let current: JsonNode | null = node; current?.key != null; current = current.parent) keys.push(current.key);
  return keys.length === 0 ? "body" : keys.reverse().join(".");
}

/**
 * Validates input that came from a path, query or body and raises `invalid_request` naming the
 * fields. An issue about the input as a whole names `rootField`, such as `id` for a path id.
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, what: string, rootField = "body"): z.infer<T> {
  const result = schema.safeParse(input, { error: fieldErrorMap });
  if (result.success) return result.data;

  const issues = result.error.issues;
  const fields = fieldIssues(result.error).map((issue, index) => (issues[index]?.path.length === 0 ? { ...issue, field: rootField } : issue));
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

import { FunctionsFetchError, FunctionsHttpError, FunctionsRelayError, type SupabaseClient } from "@supabase/supabase-js";
import { fieldErrorMap, fieldIssues } from "@berth/shared";
import type { z } from "zod";
import { BerthError, errorFromResponse } from "./errors.ts";

export type HttpMethod = "GET" | "POST" | "DELETE";

export interface FunctionRequest {
  /** The function and the path below it, for example `instances/<id>/start`. */
  path: string;
  method: HttpMethod;
  body?: Record<string, unknown>;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
}

export interface FunctionResult<T> {
  data: T;
  /** HTTP status of the response, so callers can tell 201 from 202. */
  status: number;
}

/**
 * Calls an edge function through `supabase.functions.invoke`, which sends the session's access
 * token, and parses a 2xx body with `schema`. Raises BerthError for anything else.
 */
export async function invokeFunction<Schema extends z.ZodType>(
  supabase: SupabaseClient<any, any, any>,
  request: FunctionRequest,
  schema: Schema,
): Promise<FunctionResult<z.infer<Schema>>> {
  const target = withQuery(request.path, request.query);
  const requestLine = `${request.method} /${target}`;
  const { data, error, response } = await supabase.functions.invoke(target, {
    method: request.method,
    body: request.body,
    headers: request.headers,
  });

  if (error) throw await toBerthError(error, requestLine);
  const status = response?.status ?? 200;

  const parsed = schema.safeParse(data, { error: fieldErrorMap });
  if (!parsed.success) {
    const fields = fieldIssues(parsed.error);
    const summary = fields.map((issue) => `${issue.field} ${issue.message}`).join("; ");
    throw new BerthError("invalid_response", status, `${requestLine} returned a body that does not match the Berth API: ${summary}`, { fields });
  }
  return { data: parsed.data, status };
}

/**
 * Validates a request body before it is sent, so a bad value fails with the field named and
 * without a round trip. Raises `invalid_request` with status 0 because nothing was sent.
 */
export function parseRequest<Schema extends z.ZodType>(schema: Schema, value: unknown, description: string): z.infer<Schema> {
  const parsed = schema.safeParse(value, { error: fieldErrorMap });
  if (parsed.success) return parsed.data;

  const fields = fieldIssues(parsed.error);
  const summary = fields.map((issue) => `${issue.field} ${issue.message}`).join("; ");
  throw new BerthError("invalid_request", 0, `invalid ${description}: ${summary}`, { fields });
}

function withQuery(path: string, query: FunctionRequest["query"]): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined) params.set(key, String(value));
  }
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

async function toBerthError(error: unknown, requestLine: string): Promise<BerthError> {
  if (error instanceof FunctionsHttpError || error instanceof FunctionsRelayError) {
    return errorFromResponse(error.context as Response, requestLine);
  }
  if (error instanceof FunctionsFetchError) {
    return new BerthError("network_error", 0, `${requestLine} got no response: ${describeFetchFailure(error.context)}`, undefined, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new BerthError("network_error", 0, `${requestLine} failed before a response arrived: ${message}`, undefined, { cause: error });
}

/** Returns fetch's message with its cause, because Node's "fetch failed" alone names no reason. */
function describeFetchFailure(failure: unknown): string {
  if (!(failure instanceof Error)) return String(failure);
  const cause = failure.cause instanceof Error ? failure.cause.message : undefined;
  return cause ? `${failure.message} (${cause})` : failure.message;
}

/** Encodes one path segment, so an id typed by a user cannot add path segments. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

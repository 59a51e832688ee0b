import { z } from "zod";
import {
  ErrorBody,
  InstanceObservation,
  InventoryResponse,
  LogsResponse,
  type InstanceEnsureRequest,
} from "@berth/shared";

/**
 * How an agent call failed: `timeout` (no response within the budget, so the outcome is
 * unknown), `unreachable` (no connection), `rejected` (the agent returned an error code), or
 * `invalid_response` (the response does not match the contract).
 */
export type AgentFailure = "timeout" | "unreachable" | "rejected" | "invalid_response";

export class AgentCallError extends Error {
  override name = "AgentCallError";

  constructor(
    readonly failure: AgentFailure,
    message: string,
    /** The agent's error code for `rejected`, such as `instance_not_found`. */
    readonly agentCode?: string,
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}

export interface DtmaClient {
  inventory(): Promise<InventoryResponse>;
  ensure(instanceId: string, spec: InstanceEnsureRequest): Promise<InstanceObservation>;
  start(instanceId: string): Promise<InstanceObservation>;
  stop(instanceId: string): Promise<InstanceObservation>;
  restart(instanceId: string): Promise<InstanceObservation>;
  /** Removes the container; an absent one counts as removed. */
  remove(instanceId: string): Promise<void>;
  logs(instanceId: string, tail: number): Promise<LogsResponse>;
}

export interface DtmaClientOptions {
  baseUrl: string;
  token: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

/** Creates a client for one agent. Every call has the same timeout and parses the response. */
export function createDtmaClient(options: DtmaClientOptions): DtmaClient {
  const call = <T extends z.ZodType>(method: string, path: string, schema: T | null, body?: unknown) =>
    callAgent(options, method, path, schema, body);
  const instancePath = (id: string) => `/v1/instances/${encodeURIComponent(id)}`;

  return {
    inventory: () => call("GET", "/v1/inventory", InventoryResponse),
    ensure: (id, spec) => call("PUT", instancePath(id), InstanceObservation, spec),
    start: (id) => call("POST", `${instancePath(id)}/start`, InstanceObservation),
    stop: (id) => call("POST", `${instancePath(id)}/stop`, InstanceObservation),
    restart: (id) => call("POST", `${instancePath(id)}/restart`, InstanceObservation),
    remove: async (id) => {
      await call("DELETE", instancePath(id), null);
    },
    logs: (id, tail) => call("GET", `${instancePath(id)}/logs?tail=${tail}`, LogsResponse),
  };
}

async function callAgent<T extends z.ZodType>(
  options: DtmaClientOptions,
  method: string,
  path: string,
  schema: T | null,
  body?: unknown,
): Promise<z.infer<T>> {
  const response = await send(options, method, path, body);
  const payload = await readPayload(response, method, path);

  if (!response.ok) throw rejection(response.status, payload, method, path);
  if (schema === null) return undefined as z.infer<T>;

  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    throw new AgentCallError("invalid_response", `invalid agent response to ${method} ${path}: the body does not match the contract`);
  }
  return parsed.data;
}

async function send(options: DtmaClientOptions, method: string, path: string, body?: unknown): Promise<Response> {
  const doFetch = options.fetch ?? fetch;
  const headers: Record<string, string> = { authorization: `Bearer ${options.token}` };
  if (body !== undefined) headers["content-type"] = "application/json";

  try {
    return await doFetch(new URL(path, options.baseUrl), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === "TimeoutError" || name === "AbortError") {
      throw new AgentCallError("timeout", `agent request ${method} ${path} timed out after ${options.timeoutMs} ms`);
    }
    const reason = error instanceof Error ? error.message : String(error);
    throw new AgentCallError("unreachable", `cannot reach the agent at ${options.baseUrl}: ${reason}`);
  }
}

async function readPayload(response: Response, method: string, path: string): Promise<unknown> {
  if (response.status === 204) return undefined;
  try {
    return await response.json();
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === "TimeoutError" || name === "AbortError") {
      throw new AgentCallError("timeout", `agent response to ${method} ${path} timed out before its body arrived`);
    }
    throw new AgentCallError("invalid_response", `invalid agent response to ${method} ${path}: status ${response.status} with a body that is not JSON`);
  }
}

function rejection(status: number, payload: unknown, method: string, path: string): AgentCallError {
  const parsed = ErrorBody.safeParse(payload);
  const code = parsed.success ? parsed.data.error.code : undefined;
  const message = parsed.success ? parsed.data.error.message : `status ${status}`;
  return new AgentCallError("rejected", `agent rejected ${method} ${path}: ${message}`, code, status);
}

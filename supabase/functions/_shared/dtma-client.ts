import { z } from "zod";
import {
  ErrorBody,
  ErrorCodeSchema,
  httpStatusFor,
  InstanceObservation,
  InventoryResponse,
  LogsResponse,
  type InstanceEnsureRequest,
} from "@berth/shared";
import { isIpLiteral, nonPublicRange, resolveWithSystem, type HostResolver } from "./agent-address.ts";

/**
 * Kind of agent call failure: `timeout` (no response within the budget, so the outcome is
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
  /**
   * Whether the agent may be at a loopback, private, link-local, unspecified or multicast
   * address (BERTH_ALLOW_PRIVATE_AGENT_URLS). When false, every call first resolves the host and
   * fails as `unreachable` if any of its addresses is not public.
   */
  allowPrivateAddresses: boolean;
  /** Resolves the agent's host name for that check; the system resolver when absent. */
  resolveHost?: HostResolver;
  fetch?: typeof fetch;
}

/** Maximum length of an agent error message that is passed on, in characters. */
const MAX_AGENT_MESSAGE_LENGTH = 500;

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
  if (!response.ok) throw rejection(options, response.status, await readPayload(response, method, path, { lenient: true }), method, path);

  const payload = await readPayload(response, method, path);
  if (schema === null) return undefined as z.infer<T>;

  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    throw new AgentCallError("invalid_response", `invalid agent response to ${method} ${path}: the body does not match the contract`);
  }
  return parsed.data;
}

async function send(options: DtmaClientOptions, method: string, path: string, body?: unknown): Promise<Response> {
  const url = agentUrlOf(options, path);
  await requirePublicAgent(options, url);

  const doFetch = options.fetch ?? fetch;
  const headers: Record<string, string> = { authorization: `Bearer ${options.token}` };
  if (body !== undefined) headers["content-type"] = "application/json";

  try {
    // An agent never redirects. A followed redirect could lead the call and its token to an
    // address that the check above rejects, so a 3xx response becomes a rejection instead.
    return await doFetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: "manual",
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === "TimeoutError" || name === "AbortError") {
      throw new AgentCallError("timeout", `agent request ${method} ${path} timed out after ${options.timeoutMs} ms`);
    }
    throw unreachable(url, error);
  }
}

function agentUrlOf(options: DtmaClientOptions, path: string): URL {
  try {
    return new URL(path, options.baseUrl);
  } catch (error) {
    const invalid = new AgentCallError("unreachable", "cannot reach the agent: its agent_url is not a valid URL; register the toolbox again with a valid one");
    invalid.cause = error;
    throw invalid;
  }
}

/**
 * Raises `unreachable` unless private addresses are allowed or every address of the agent's
 * host is public. All addresses count, because fetch may connect to any of them.
 * NOTE: fetch resolves the name again, so a DNS server that answers differently the second
 * time (DNS rebinding) can still lead the call to a private address.
 */
async function requirePublicAgent(options: DtmaClientOptions, url: URL): Promise<void> {
  if (options.allowPrivateAddresses) return;

  let addresses: string[];
  try {
    addresses = isIpLiteral(url.hostname) ? [url.hostname] : await (options.resolveHost ?? resolveWithSystem)(url.hostname);
  } catch (error) {
    throw unreachable(url, error);
  }

  const blocked = addresses.find((address) => nonPublicRange(address) !== null);
  if (addresses.length === 0 || blocked !== undefined) {
    throw unreachable(url, new Error(`the agent host resolves to ${blocked ?? "no address"}, which is not public`));
  }
}

/**
 * Builds the error of an agent that cannot be reached. The message is the same for a refused
 * connection, a port that does not speak HTTP, a failed name lookup and a blocked address, so
 * callers cannot probe hosts and ports through it. The reason is kept in `cause`.
 * NOTE: the driver logs only the message, so the reason reaches no log yet.
 */
function unreachable(url: URL, reason: unknown): AgentCallError {
  const error = new AgentCallError("unreachable", `cannot reach the agent at ${authorityOf(url)}`);
  error.cause = reason;
  return error;
}

/** Returns `host:port` of a URL, with the scheme's default port when the URL has none. */
function authorityOf(url: URL): string {
  if (url.port !== "") return `${url.hostname}:${url.port}`;
  return `${url.hostname}:${url.protocol === "https:" ? 443 : 80}`;
}

/** Reads a JSON body. A body that is not JSON raises `invalid_response`, or is undefined when `lenient`. */
async function readPayload(response: Response, method: string, path: string, options: { lenient?: boolean } = {}): Promise<unknown> {
  if (response.status === 204) return undefined;
  try {
    return await response.json();
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === "TimeoutError" || name === "AbortError") {
      throw new AgentCallError("timeout", `agent response to ${method} ${path} timed out before its body arrived`);
    }
    if (options.lenient) return undefined;
    throw new AgentCallError("invalid_response", `invalid agent response to ${method} ${path}: status ${response.status} with a body that is not JSON`);
  }
}

/**
 * Builds the error of a non-2xx response. Only an error body of the agent contract (a known
 * code with the status that code maps to) passes its code and message on. Anything else gets
 * a generic message with the host and status, because the URL may point at a service that is
 * not an agent, whose error text must not reach the caller or `status_reason`.
 */
function rejection(options: DtmaClientOptions, status: number, payload: unknown, method: string, path: string): AgentCallError {
  const authority = authorityOf(new URL(options.baseUrl));
  const parsed = ErrorBody.safeParse(payload);
  const code = parsed.success ? ErrorCodeSchema.safeParse(parsed.data.error.code) : undefined;

  if (!parsed.success || !code?.success || httpStatusFor(code.data) !== status) {
    return new AgentCallError("rejected", `the agent at ${authority} rejected ${method} ${path} with status ${status}`, undefined, status);
  }
  const message = parsed.data.error.message.slice(0, MAX_AGENT_MESSAGE_LENGTH);
  return new AgentCallError("rejected", `the agent at ${authority} rejected ${method} ${path}: ${message}`, code.data, status);
}

import http from "node:http";
import type { AddressInfo } from "node:net";
import postgres, { type Sql } from "postgres";
import { asJwt } from "../../../../tests/support/db.ts";

export interface PostgrestStandIn {
  url: string;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
}

const TABLES = new Set(["toolboxes", "tool_instances", "instance_events", "reconcile_runs"]);
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
const OPERATORS: Record<string, string> = { eq: "=", neq: "<>", lt: "<", lte: "<=", gt: ">", gte: ">=" };
const RESERVED_PARAMS = new Set(["select", "order", "limit", "offset"]);

/** An error returned with PostgREST's status and body. */
class RestError extends Error {
  constructor(
    readonly status: number,
    readonly body: { code: string; message: string; details: string | null; hint: string | null },
  ) {
    super(body.message);
  }
}

/**
 * Starts a stand-in for PostgREST, which does not run in this project's test stack. It serves
 * `GET /rest/v1/<table>` for the part of PostgREST's query syntax the client uses: select lists,
 * `eq`/`neq`/`lt`/`lte`/`gt`/`gte`/`is` filters, `order`, `limit` and `offset`. Each query runs
 * against a real database the way PostgREST runs it, in a transaction that switches to the
 * JWT's role with the claims in `request.jwt.claims`, and PostgreSQL's `json_agg` serialises the
 * rows. Row level security and grants therefore apply as in production. Errors use PostgREST's
 * body shape `{code, message, details, hint}`.
 */
export async function startPostgrestStandIn(sql: Sql): Promise<PostgrestStandIn> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://stand-in.local");
    requests.push({ method: request.method ?? "GET", path: url.pathname, query: url.searchParams, headers: request.headers });
    handle(sql, request, url).then(
      (body) => send(response, 200, body),
      (error: unknown) => {
        if (error instanceof RestError) return send(response, error.status, JSON.stringify(error.body));
        send(response, 500, JSON.stringify({ code: "XX000", message: String(error), details: null, hint: null }));
      },
    );
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function handle(sql: Sql, request: http.IncomingMessage, url: URL): Promise<string> {
  const table = /^\/rest\/v1\/([^/]+)$/.exec(url.pathname)?.[1];
  if (request.method !== "GET" || table === undefined) throw restError(404, "PGRST125", `Invalid path specified in request URL: ${url.pathname}`);
  if (!TABLES.has(table)) throw restError(404, "PGRST205", `Could not find the table 'public.${table}' in the schema cache`);

  const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1];
  if (token === undefined) throw restError(401, "PGRST302", "Anonymous access is disabled");

  const { text, params } = buildQuery(table, url.searchParams);
  try {
    return await asJwt(sql, token, async (tx) => {
      const [row] = await tx.unsafe<Array<{ body: string }>>(text, params);
      return row?.body ?? "[]";
    });
  } catch (error) {
    throw databaseError(error);
  }
}

/** Translates the query string into one SQL statement that returns the rows as a JSON array. */
function buildQuery(table: string, query: URLSearchParams): { text: string; params: string[] } {
  const params: string[] = [];
  const columns = selectList(query.get("select") ?? "*");
  const where = [...query.entries()].filter(([key]) => !RESERVED_PARAMS.has(key)).map(([column, filter]) => condition(column, filter, params));
  const order = orderBy(query.get("order"));
  const limit = query.has("limit") ? ` limit ${wholeNumber(query.get("limit") as string)}` : "";
  const offset = query.has("offset") ? ` offset ${wholeNumber(query.get("offset") as string)}` : "";

  const whereClause = where.length > 0 ? ` where ${where.join(" and ")}` : "";
  const inner = `select ${columns} from public.${table}${whereClause}${order}${limit}${offset}`;
  return { text: `select coalesce(json_agg(t), '[]'::json)::text as body from (${inner}) as t`, params };
}

function selectList(select: string): string {
  if (select.trim() === "*") return "*";
  return select
    .split(",")
    .map((column) => identifier(column.trim()))
    .join(", ");
}

function condition(column: string, filter: string, params: string[]): string {
  const separator = filter.indexOf(".");
  const operator = filter.slice(0, separator);
  const value = filter.slice(separator + 1);

  if (operator === "is" && ["null", "true", "false"].includes(value)) return `${identifier(column)} is ${value}`;
  const sqlOperator = OPERATORS[operator];
  if (separator === -1 || sqlOperator === undefined) throw restError(400, "PGRST100", `failed to parse filter (${filter})`);
  params.push(value);
  return `${identifier(column)} ${sqlOperator} $${params.length}`;
}

function orderBy(order: string | null): string {
  if (order === null) return "";
  const terms = order.split(",").map((term) => {
    const [column, ...modifiers] = term.split(".");
    const direction = modifiers.includes("desc") ? " desc" : " asc";
    let nulls = "";
    if (modifiers.includes("nullsfirst")) nulls = " nulls first";
    if (modifiers.includes("nullslast")) nulls = " nulls last";
    return `${identifier(column ?? "")}${direction}${nulls}`;
  });
  return ` order by ${terms.join(", ")}`;
}

function identifier(name: string): string {
  if (!IDENTIFIER.test(name)) throw restError(400, "PGRST100", `failed to parse column name "${name}"`);
  return `"${name}"`;
}

function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value)) throw restError(400, "PGRST100", `failed to parse limit or offset "${value}"`);
  return Number(value);
}

/** Maps database errors to PostgREST's statuses: 42501 (insufficient privilege) is 403, the rest 400. */
function databaseError(error: unknown): RestError {
  if (error instanceof postgres.PostgresError) {
    const status = error.code === "42501" ? 403 : 400;
    return new RestError(status, { code: error.code, message: error.message, details: error.detail ?? null, hint: error.hint ?? null });
  }
  return restError(401, "PGRST301", `JWT rejected: ${error instanceof Error ? error.message : String(error)}`);
}

function restError(status: number, code: string, message: string): RestError {
  return new RestError(status, { code, message, details: null, hint: null });
}

function send(response: http.ServerResponse, status: number, body: string): void {
  response.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  response.end(body);
}

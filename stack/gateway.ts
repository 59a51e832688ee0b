import http from "node:http";
import { Readable } from "node:stream";
import { errorBody, type ErrorCode, httpStatusFor } from "@berth/shared";
import { verifyJwt } from "./jwt.ts";

export interface GatewayRoute {
  name: string;
  verifyJwt: boolean;
  /** Base URL of the Deno process serving the function. */
  upstream: string;
}

export interface Gateway {
  url: string;
  stop(): Promise<void>;
}

const FUNCTIONS_PREFIX = "/functions/v1/";

/** Headers that describe one hop and must not be forwarded by a proxy (RFC 9110, section 7.6.1). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"]);

/**
 * Serves `/functions/v1/<name>/...` the way Supabase's API gateway does for the local stack:
 * when a function has `verify_jwt`, the request needs a valid project JWT in `Authorization`,
 * then it is forwarded to the function with the path the function receives on Supabase
 * (`/<name>/...`).
 */
export async function startGateway(options: { port: number; host?: string; routes: GatewayRoute[]; jwtSecret: string }): Promise<Gateway> {
  const routes = new Map(options.routes.map((route) => [route.name, route]));
  const server = http.createServer((request, response) => {
    handle(request, response, routes, options.jwtSecret).catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      sendError(response, "function_unavailable", `function did not respond: ${message}`);
    });
  });

  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => resolve());
  });

  return {
    url: `http://${host}:${options.port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function handle(request: http.IncomingMessage, response: http.ServerResponse, routes: Map<string, GatewayRoute>, jwtSecret: string): Promise<void> {
  const url = new URL(request.url ?? "/", "http://gateway.local");
  if (!url.pathname.startsWith(FUNCTIONS_PREFIX)) {
    return sendError(response, "not_found", `no route for ${url.pathname}; functions are served under ${FUNCTIONS_PREFIX}<name>`);
  }

  const functionPath = url.pathname.slice(FUNCTIONS_PREFIX.length - 1);
  const name = functionPath.split("/")[1] ?? "";
  const route = routes.get(name);
  if (!route) {
    return sendError(response, "not_found", `function ${JSON.stringify(name)} is not served here`);
  }

  // Browsers send CORS preflights without credentials, so they pass through unchecked.
  if (route.verifyJwt && request.method !== "OPTIONS") {
    const rejection = await checkJwt(request.headers.authorization, jwtSecret);
    if (rejection) return sendError(response, "unauthorized", rejection);
  }

  await forward(request, response, `${route.upstream}${functionPath}${url.search}`);
}

/** Returns why the Authorization header is rejected, or undefined when it contains a valid JWT. */
async function checkJwt(authorization: string | undefined, jwtSecret: string): Promise<string | undefined> {
  const token = /^Bearer (.+)$/i.exec(authorization ?? "")?.[1];
  if (!token) return "missing Authorization header with a Bearer JWT";
  try {
    await verifyJwt(token, jwtSecret);
    return undefined;
  } catch (error) {
    return `invalid JWT: ${error instanceof Error ? error.message : String(error)}`;
  }
}

async function forward(request: http.IncomingMessage, response: http.ServerResponse, target: string): Promise<void> {
  const headers = new Headers();
  for (const [key, value] of Object.entries(request.headers)) {
    if (value === undefined || HOP_BY_HOP.has(key) || key === "host") continue;
    headers.set(key, Array.isArray(value) ? value.join(", ") : value);
  }

  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  const upstream = await fetch(target, {
    method: request.method,
    headers,
    body: hasBody ? (Readable.toWeb(request) as ReadableStream<Uint8Array>) : undefined,
    duplex: "half",
    redirect: "manual",
  } as RequestInit);

  const responseHeaders: Record<string, string> = {};
  upstream.headers.forEach((value, key) => {
    if (!HOP_BY_HOP.has(key) && key !== "content-encoding" && key !== "content-length") responseHeaders[key] = value;
  });
  response.writeHead(upstream.status, responseHeaders);
  if (upstream.body) {
    for await (const chunk of upstream.body as unknown as AsyncIterable<Uint8Array>) response.write(chunk);
  }
  response.end();
}

function sendError(response: http.ServerResponse, code: ErrorCode, message: string): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  response.writeHead(httpStatusFor(code), { "content-type": "application/json" });
  response.end(JSON.stringify(errorBody(code, message)));
}

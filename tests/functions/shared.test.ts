import http from "node:http";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { deriveAgentToken, verifyAgentToken } from "../../supabase/functions/_shared/agent-token.ts";
import { createAuthenticator } from "../../supabase/functions/_shared/auth.ts";
import { AgentCallError, createDtmaClient } from "../../supabase/functions/_shared/dtma-client.ts";
import { ApiError } from "../../supabase/functions/_shared/errors.ts";
import { createLogger } from "../../supabase/functions/_shared/log.ts";
import { LOCAL_JWT_SECRET, mintAnonKey, mintServiceRoleKey, mintUserJwt } from "../../stack/jwt.ts";
import { freePort } from "../../stack/net.ts";

const SECRET = "agent-token-secret-with-more-than-32-characters";
const TOOLBOX = "7d1c4f5e-2b9a-4c3d-8e6f-0a1b2c3d4e5f";
const USER = "0b5a3c2e-1111-4222-8333-444455556666";

function request(token?: string): Request {
  return new Request("http://functions.local/instances", { headers: token ? { authorization: `Bearer ${token}` } : {} });
}

async function apiErrorOf(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
}

describe("agent token", () => {
  test("derived token verifies", async () => {
    const token = await deriveAgentToken(SECRET, TOOLBOX, 1);

    expect(await verifyAgentToken(SECRET, TOOLBOX, 1, token)).toBe(true);
  });

  test("rotated version rejects the old token", async () => {
    const token = await deriveAgentToken(SECRET, TOOLBOX, 1);

    expect(await verifyAgentToken(SECRET, TOOLBOX, 2, token)).toBe(false);
  });

  test("token of another toolbox is rejected", async () => {
    const token = await deriveAgentToken(SECRET, "11111111-2222-4333-8444-555555555555", 1);

    expect(await verifyAgentToken(SECRET, TOOLBOX, 1, token)).toBe(false);
  });

  test("malformed token is rejected", async () => {
    for (const garbage of ["", "not base64 !", "a".repeat(500)]) {
      expect(await verifyAgentToken(SECRET, TOOLBOX, 1, garbage)).toBe(false);
    }
  });
});

describe("authenticator", () => {
  const auth = createAuthenticator({ supabaseUrl: "http://127.0.0.1:1", jwtSecret: LOCAL_JWT_SECRET });

  test("user token yields the user id", async () => {
    const caller = await auth.requireUser(request(await mintUserJwt(USER, "a@example.test")));

    expect(caller).toEqual({ userId: USER, email: "a@example.test" });
  });

  test("anon key is not a user", async () => {
    const error = await apiErrorOf(auth.requireUser(request(await mintAnonKey())));

    expect(error.code).toBe("unauthorized");
  });

  test("missing header is unauthorized", async () => {
    const error = await apiErrorOf(auth.requireUser(request()));

    expect(error.code).toBe("unauthorized");
  });

  test("expired user token is unauthorized", async () => {
    const error = await apiErrorOf(auth.requireUser(request(await mintUserJwt(USER, undefined, { expiresInSeconds: -5 }))));

    expect(error.code).toBe("unauthorized");
  });

  test("service key passes the service check", async () => {
    await expect(auth.requireService(request(await mintServiceRoleKey()))).resolves.toBeUndefined();
  });

  test("user token fails the service check with 403", async () => {
    const error = await apiErrorOf(auth.requireService(request(await mintUserJwt(USER))));

    expect(error.code).toBe("forbidden");
  });

  test("opaque service key matches by value", async () => {
    const opaque = createAuthenticator({ supabaseUrl: "http://127.0.0.1:1", jwtSecret: LOCAL_JWT_SECRET, serviceRoleKey: "sb_secret_local" });

    await expect(opaque.requireService(request("sb_secret_local"))).resolves.toBeUndefined();
    expect((await apiErrorOf(opaque.requireService(request("sb_secret_wrong")))).code).toBe("unauthorized");
  });
});

describe("logger", () => {
  test("redacts secrets at any depth", () => {
    const lines: string[] = [];
    const logger = createLogger({ request_id: "r1" }, (line) => lines.push(line)).child({ toolbox_id: TOOLBOX });

    logger.info("deploy", { token_version: 3, agent_token: "s3cret", spec: { env: { A: "s3cret" }, secrets: { B: "s3cret" } } });

    const record = JSON.parse(lines[0] ?? "{}");
    expect(lines[0]).not.toContain("s3cret");
    expect(record).toMatchObject({ level: "info", msg: "deploy", request_id: "r1", toolbox_id: TOOLBOX, token_version: 3 });
  });
});

describe("dtma client", () => {
  let server: http.Server;
  let baseUrl: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url?.startsWith("/v1/instances/slow")) return; // never answers
      if (req.method === "DELETE") {
        res.writeHead(204).end();
        return;
      }
      if (req.headers.authorization !== "Bearer agent-token") {
        res.writeHead(403, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "forbidden", message: "wrong token" } }));
        return;
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "instance_not_found", message: "no container" } }));
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test("agent error keeps its code", async () => {
    const client = createDtmaClient({ baseUrl, token: "agent-token", timeoutMs: 2_000, allowPrivateAddresses: true });
    const error = await client.start("7d1c4f5e-2b9a-4c3d-8e6f-0a1b2c3d4e5f").catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(AgentCallError);
    expect((error as AgentCallError).failure).toBe("rejected");
    expect((error as AgentCallError).agentCode).toBe("instance_not_found");
    expect((error as AgentCallError).httpStatus).toBe(404);
  });

  test("delete with 204 resolves", async () => {
    const client = createDtmaClient({ baseUrl, token: "agent-token", timeoutMs: 2_000, allowPrivateAddresses: true });

    await expect(client.remove("7d1c4f5e-2b9a-4c3d-8e6f-0a1b2c3d4e5f")).resolves.toBeUndefined();
  });

  test("silent agent times out", async () => {
    const client = createDtmaClient({ baseUrl, token: "agent-token", timeoutMs: 200, allowPrivateAddresses: true });
    const error = await client.start("slow").catch((caught: unknown) => caught);

    expect((error as AgentCallError).failure).toBe("timeout");
  });

  test("closed port is unreachable", async () => {
    const client = createDtmaClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, token: "agent-token", timeoutMs: 2_000, allowPrivateAddresses: true });
    const error = await client.inventory().catch((caught: unknown) => caught);

    expect((error as AgentCallError).failure).toBe("unreachable");
  });
});

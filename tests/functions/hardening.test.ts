// Input and identity checks of the functions: strings PostgreSQL cannot store, keys JavaScript
// objects drop, idempotency keys after an unexpected error, lease holders, heartbeat limits, JWT
// algorithms and audience, and the field names of path and query ids.
import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { LOCAL_JWT_SECRET, mintUserJwt, signJwt } from "../../stack/jwt.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { startFakeAgent, type FakeAgent } from "./support/fake-agent.ts";
import { call, countWrites, createFunctions, type FunctionsUnderTest } from "./support/functions.ts";

const getDb = useTestDatabase();

const SECRET_VALUE = "hunter2-secret-value";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function fieldsOf(response: { body: any }): string[] {
  return (response.body?.error?.details?.fields ?? []).map((issue: { field: string }) => issue.field);
}

describe("functions input hardening", () => {
  let functions: FunctionsUnderTest;
  let agent: FakeAgent;
  let ownerId: string;
  let token: string;
  let toolboxId: string;
  let agentToken: string;
  let nameCounter = 0;

  beforeAll(async () => {
    agent = await startFakeAgent();
    functions = createFunctions({ databaseUrl: getDb().url, agentTimeoutMs: 500, leaseTtlSeconds: 3 });
    ownerId = await createUser(getDb().sql);
    token = await mintUserJwt(ownerId);
    const created = await call(functions.toolboxes, "POST", "/toolboxes", { token, body: { name: "hardening", agent_url: agent.url } });
    toolboxId = created.body.toolbox.id;
    agentToken = created.body.agent_token;
  });

  afterAll(async () => {
    await functions?.close();
    await agent?.close();
  });

  beforeEach(() => {
    agent.mode = "ok";
  });

  function nextName(): string {
    nameCounter += 1;
    return `tool-${nameCounter}`;
  }

  /** Builds a deploy body as raw JSON text, so it can carry escapes such as `\ud800` that JSON.stringify would not produce. */
  function rawDeployBody(fields: string): string {
    return `{"toolbox_id":"${toolboxId}","name":"${nextName()}","image":"nginx:1.27","port":80,${fields}}`;
  }

  test.each([
    ["secrets value", `"secrets":{"API_KEY":"${SECRET_VALUE}\\ud800"}`, "secrets.API_KEY"],
    ["env value", `"env":{"A":"${SECRET_VALUE}\\udfff"}`, "env.A"],
    ["env value with NUL", `"env":{"A":"${SECRET_VALUE}\\u0000"}`, "env.A"],
    ["command argument", `"command":["run","${SECRET_VALUE}\\ud800"]`, "command.1"],
    ["mcp_path", `"mcp_path":"/mcp\\ud800"`, "mcp_path"],
    ["env name", `"env":{"A\\ud800":"x"}`, "env"],
  ])("lone surrogate in %s is rejected", async (_case, fields, field) => {
    const before = await countWrites(getDb().sql);
    const logStart = functions.logLines.length;

    const response = await call(functions.instances, "POST", "/instances", { token, body: rawDeployBody(fields) });

    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("invalid_request");
    expect(fieldsOf(response)).toEqual([field]);
    expect(response.text).not.toContain(SECRET_VALUE);
    expect(functions.logLines.slice(logStart).join("\n")).not.toContain(SECRET_VALUE);
    expect(await countWrites(getDb().sql)).toEqual(before);
  });

  test.each([
    ["name", `{"toolbox_id":"TOOLBOX","name":"a\\ud800","image":"nginx:1.27","port":80}`],
    ["image", `{"toolbox_id":"TOOLBOX","name":"img","image":"nginx:1.27\\ud800","port":80}`],
  ])("lone surrogate in deploy %s is rejected", async (field, body) => {
    const response = await call(functions.instances, "POST", "/instances", { token, body: body.replace("TOOLBOX", toolboxId) });

    expect(response.status).toBe(400);
    expect(fieldsOf(response)).toEqual([field]);
  });

  test.each([
    ["agent_url", `{"name":"surrogate-url","agent_url":"http://203.0.113.7:30000\\ud800"}`],
    ["name", `{"name":"box\\ud800","agent_url":"http://203.0.113.7:30000"}`],
    ["agent_url", `{"name":"nul-url","agent_url":"http://127.0.0.1:9/\\u0000"}`],
  ])("lone surrogate or NUL in toolbox %s is rejected", async (field, body) => {
    const before = await countWrites(getDb().sql);

    const response = await call(functions.toolboxes, "POST", "/toolboxes", { token, body });

    expect(response.status).toBe(400);
    expect(fieldsOf(response)).toEqual([field]);
    expect(await countWrites(getDb().sql)).toEqual(before);
  });

  test("paired surrogates are accepted", async () => {
    const response = await call(functions.instances, "POST", "/instances", { token, body: rawDeployBody(`"env":{"EMOJI":"\\ud83d\\ude00"}`) });

    expect(response.status).toBe(201);
    expect(response.body.env).toEqual({ EMOJI: "\u{1F600}" });
  });

  test.each([
    ["env", `"env":{"__proto__":"x"}`, "env.__proto__"],
    ["secrets", `"secrets":{"__proto__":"x"}`, "secrets.__proto__"],
  ])("__proto__ name in %s is rejected", async (_case, fields, field) => {
    const before = await countWrites(getDb().sql);

    const response = await call(functions.instances, "POST", "/instances", { token, body: rawDeployBody(fields) });

    expect(response.status).toBe(400);
    expect(fieldsOf(response)).toEqual([field]);
    expect(await countWrites(getDb().sql)).toEqual(before);
  });

  test("constructor and prototype names are kept", async () => {
    const response = await call(functions.instances, "POST", "/instances", { token, body: rawDeployBody(`"env":{"constructor":"c","prototype":"p"}`) });

    expect(response.status).toBe(201);
    expect(response.body.env).toEqual({ constructor: "c", prototype: "p" });
  });

  test("idempotency key is not blocked after a 500", async () => {
    const broken = createFunctions({
      databaseUrl: getDb().url,
      agents: async () => {
        throw new Error("agent client factory failed");
      },
    });
    try {
      const key = randomUUID();
      const body = { toolbox_id: toolboxId, name: nextName(), image: "nginx:1.27", port: 80 };
      const send = () => call(broken.instances, "POST", "/instances", { token, body, headers: { "idempotency-key": key } });

      const first = await send();
      const retry = await send();

      expect(first.status).toBe(500);
      expect(first.body.error.code).toBe("internal_error");
      expect(retry.body.error.code).not.toBe("request_in_progress");
      expect(retry.status).toBe(500);
      expect(retry.headers.get("idempotent-replayed")).toBe("true");
    } finally {
      await broken.close();
    }
  });

  test("lease holder ignores the client request id", async () => {
    const deployed = await call(functions.instances, "POST", "/instances", { token, body: { toolbox_id: toolboxId, name: nextName(), image: "nginx:1.27", port: 80 } });
    expect(deployed.status).toBe(201);
    agent.mode = "hang";

    const stopped = await call(functions.instances, "POST", `/instances/${deployed.body.id}/stop`, { token, headers: { "x-request-id": "shared-id" } });

    expect(stopped.status).toBe(202);
    expect(stopped.headers.get("x-request-id")).toBe("shared-id");
    const [row] = await getDb().sql`select lease_holder from public.tool_instances where id = ${deployed.body.id}`;
    expect(row!.lease_holder).not.toContain("shared-id");
    expect(row!.lease_holder).toMatch(/^user:/);
    expect(String(row!.lease_holder).slice("user:".length)).toMatch(UUID);
  });

  test("long agent_version is rejected", async () => {
    const body = { toolbox_id: toolboxId, agent_version: "v".repeat(900_000), engine_version: "26.1.0", sent_at: new Date().toISOString(), instances: [], events: [] };

    const response = await call(functions.heartbeat, "POST", "/dtma-heartbeat", { token: agentToken, body });

    expect(response.status).toBe(400);
    expect(fieldsOf(response)).toEqual(["agent_version"]);
    const [row] = await getDb().sql`select length(agent_version) as length from public.toolboxes where id = ${toolboxId}`;
    expect(row!.length ?? 0).toBeLessThan(1000);
  });

  test.each([
    ["engine_version", { engine_version: "e".repeat(101) }],
    ["instances.0.container_id", { instances: [{ instance_id: randomUUID(), container_id: "c".repeat(300), state: "running", exit_code: null, oom_killed: false, restart_count: 0, generation: 1, host_port: 30001, started_at: null, finished_at: null, health: null }] }],
  ])("heartbeat caps %s", async (field, override) => {
    const body = { toolbox_id: toolboxId, agent_version: "0.1.0", engine_version: "26.1.0", sent_at: new Date().toISOString(), instances: [], events: [], ...override };

    const response = await call(functions.heartbeat, "POST", "/dtma-heartbeat", { token: agentToken, body });

    expect(response.status).toBe(400);
    expect(fieldsOf(response)).toEqual([field]);
  });

  test("heartbeat checks the token before the body", async () => {
    const body = { toolbox_id: toolboxId, agent_version: "v".repeat(900_000), engine_version: 7, instances: "not a list" };

    const response = await call(functions.heartbeat, "POST", "/dtma-heartbeat", { token: "not-the-token", body });

    expect(response.status).toBe(401);
    expect(response.body.error.code).toBe("unauthorized");
  });

  test("HS512 token with the project secret is rejected", async () => {
    const now = Math.floor(Date.now() / 1000);
    const hs512 = await new SignJWT({ sub: ownerId, role: "authenticated", aud: "authenticated" })
      .setProtectedHeader({ alg: "HS512", typ: "JWT" })
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(new TextEncoder().encode(LOCAL_JWT_SECRET));

    const response = await call(functions.toolboxes, "GET", "/toolboxes", { token: hs512 });

    expect(response.status).toBe(401);
  });

  test.each([
    ["another audience", { aud: "someone-else" }],
    ["no audience", { aud: undefined }],
  ])("user token with %s is rejected", async (_case, claims) => {
    const forged = await signJwt({ sub: ownerId, role: "authenticated", ...claims });

    const response = await call(functions.toolboxes, "GET", "/toolboxes", { token: forged });

    expect(response.status).toBe(401);
  });

  test.each([
    ["toolboxes", "/toolboxes/not-a-uuid", "id"],
    ["instances", "/instances/not-a-uuid", "id"],
    ["instances", "/instances?toolbox_id=not-a-uuid", "toolbox_id"],
  ] as const)("bad id in %s %s names %s", async (handler, path, field) => {
    const response = await call(functions[handler], "GET", path, { token });

    expect(response.status).toBe(400);
    expect(fieldsOf(response)).toEqual([field]);
    expect(response.body.error.message).not.toContain("body");
  });
});

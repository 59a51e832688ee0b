// Access control and input validation of the instances function. The agent is the fake one
// from support/fake-agent.ts, because these cases never depend on what a container does.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mintAnonKey, mintServiceRoleKey, mintUserJwt } from "../../stack/jwt.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { startFakeAgent, type FakeAgent } from "./support/fake-agent.ts";
import { call, countWrites, createFunctions, type FunctionsUnderTest } from "./support/functions.ts";

const IMAGE = "localhost/berth/http-echo:test";

const getDb = useTestDatabase();

describe("instances function access and validation", () => {
  let functions: FunctionsUnderTest;
  let agent: FakeAgent;
  let ownerToken: string;
  let otherToken: string;
  let toolboxId: string;
  let instanceId: string;

  beforeAll(async () => {
    agent = await startFakeAgent();
    functions = createFunctions({ databaseUrl: getDb().url });
    ownerToken = await mintUserJwt(await createUser(getDb().sql));
    otherToken = await mintUserJwt(await createUser(getDb().sql));
    const toolbox = await call(functions.toolboxes, "POST", "/toolboxes", { token: ownerToken, body: { name: "owned", agent_url: agent.url } });
    toolboxId = toolbox.body.toolbox.id;
    const deployed = await call(functions.instances, "POST", "/instances", {
      token: ownerToken,
      body: { toolbox_id: toolboxId, name: "private-tool", image: IMAGE, port: 8080 },
    });
    expect(deployed.status).toBe(201);
    instanceId = deployed.body.id;
  });

  afterAll(async () => {
    await functions?.close();
    await agent?.close();
  });

  function instanceRoutes(id: string): [string, string][] {
    return [
      ["GET", `/instances/${id}`],
      ["POST", `/instances/${id}/start`],
      ["POST", `/instances/${id}/stop`],
      ["POST", `/instances/${id}/restart`],
      ["GET", `/instances/${id}/logs`],
      ["DELETE", `/instances/${id}`],
    ];
  }

  test("other user gets 404 on every route", async () => {
    const before = await countWrites(getDb().sql);
    const agentCalls = agent.requests.length;

    for (const [method, path] of instanceRoutes(instanceId)) {
      const response = await call(functions.instances, method, path, { token: otherToken });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(response.body.error.code, `${method} ${path}`).toBe("instance_not_found");
    }
    const listed = await call(functions.instances, "GET", "/instances", { token: otherToken });
    expect(listed.body.instances).toEqual([]);
    expect(await countWrites(getDb().sql)).toEqual(before);
    expect(agent.requests.length).toBe(agentCalls);
  });

  test("missing instance answers like a foreign one", async () => {
    const response = await call(functions.instances, "GET", `/instances/${randomUUID()}`, { token: ownerToken });

    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe("instance_not_found");
  });

  test("other user cannot deploy onto the toolbox", async () => {
    const before = await countWrites(getDb().sql);

    const response = await call(functions.instances, "POST", "/instances", {
      token: otherToken,
      body: { toolbox_id: toolboxId, name: "intruder", image: IMAGE, port: 8080 },
    });

    expect(response.status).toBe(400);
    expect(response.body.error.details.fields).toEqual([{ field: "toolbox_id", message: "must be the id of one of your toolboxes" }]);
    expect(await countWrites(getDb().sql)).toEqual(before);
  });

  test("anon and missing tokens get 401", async () => {
    const routes: [string, string][] = [["GET", "/instances"], ["POST", "/instances"], ...instanceRoutes(instanceId)];
    const before = await countWrites(getDb().sql);

    for (const token of [await mintAnonKey(), await mintServiceRoleKey(), null]) {
      for (const [method, path] of routes) {
        const response = await call(functions.instances, method, path, { token, body: method === "POST" ? {} : undefined });
        expect(response.status, `${method} ${path}`).toBe(401);
        expect(response.body.error.code).toBe("unauthorized");
      }
    }
    expect(await countWrites(getDb().sql)).toEqual(before);
  });

  const valid = () => ({ toolbox_id: toolboxId, name: "valid-name", image: IMAGE, port: 8080 });

  test.each([
    ["missing image", (body: Record<string, unknown>) => ({ ...body, image: undefined }), "image"],
    ["image with a space", (body: Record<string, unknown>) => ({ ...body, image: "my image" }), "image"],
    ["port 0", (body: Record<string, unknown>) => ({ ...body, port: 0 }), "port"],
    ["port as a string", (body: Record<string, unknown>) => ({ ...body, port: "8080" }), "port"],
    ["name with a space", (body: Record<string, unknown>) => ({ ...body, name: "my tool" }), "name"],
    ["uppercase name", (body: Record<string, unknown>) => ({ ...body, name: "MyTool" }), "name"],
    ["env value not a string", (body: Record<string, unknown>) => ({ ...body, env: { LEVEL: 3 } }), "env.LEVEL"],
    ["env name with a dash", (body: Record<string, unknown>) => ({ ...body, env: { "LOG-LEVEL": "x" } }), "env.LOG-LEVEL"],
    ["secret also in env", (body: Record<string, unknown>) => ({ ...body, env: { KEY: "a" }, secrets: { KEY: "b" } }), "secrets.KEY"],
    ["command not strings", (body: Record<string, unknown>) => ({ ...body, command: ["node", 1] }), "command.1"],
    ["mcp_path without slash", (body: Record<string, unknown>) => ({ ...body, mcp_path: "mcp" }), "mcp_path"],
    ["unknown toolbox", (body: Record<string, unknown>) => ({ ...body, toolbox_id: randomUUID() }), "toolbox_id"],
    ["toolbox id not a UUID", (body: Record<string, unknown>) => ({ ...body, toolbox_id: "box-1" }), "toolbox_id"],
    ["unknown field", (body: Record<string, unknown>) => ({ ...body, replicas: 2 }), "body"],
  ])("deploy rejects %s", async (_case, change, field) => {
    const before = await countWrites(getDb().sql);

    const response = await call(functions.instances, "POST", "/instances", { token: ownerToken, body: change(valid()), headers: { "idempotency-key": randomUUID() } });

    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("invalid_request");
    expect(response.body.error.details.fields.map((issue: { field: string }) => issue.field)).toContain(field);
    expect(await countWrites(getDb().sql)).toEqual(before);
  });

  test("body that is not JSON", async () => {
    const response = await call(functions.instances, "POST", "/instances", { token: ownerToken, body: "{not json" });

    expect(response.status).toBe(400);
    expect(response.body.error.details.fields).toEqual([{ field: "body", message: "must be valid JSON" }]);
  });

  test("duplicate name is a conflict", async () => {
    const before = await countWrites(getDb().sql);

    const response = await call(functions.instances, "POST", "/instances", { token: ownerToken, body: { ...valid(), name: "private-tool" } });

    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe("name_taken");
    expect(await countWrites(getDb().sql)).toEqual(before);
  });

  test("malformed id and unknown action", async () => {
    const malformed = await call(functions.instances, "GET", "/instances/not-a-uuid", { token: ownerToken });
    const unknownAction = await call(functions.instances, "POST", `/instances/${instanceId}/pause`, { token: ownerToken });
    const wrongMethod = await call(functions.instances, "GET", `/instances/${instanceId}/start`, { token: ownerToken });

    expect(malformed.status).toBe(400);
    expect(unknownAction.status).toBe(404);
    expect(wrongMethod.status).toBe(405);
  });

  test("logs rejects a bad tail", async () => {
    const response = await call(functions.instances, "GET", `/instances/${instanceId}/logs?tail=0`, { token: ownerToken });

    expect(response.status).toBe(400);
    expect(response.body.error.details.fields[0].field).toBe("tail");
  });
});

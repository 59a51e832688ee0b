// GET /instances/{id}/events of the instances function: the status history that the database's
// trigger writes, read through the registry. The agent is the fake one from
// support/fake-agent.ts, because only the status changes it causes matter here.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mintAnonKey, mintServiceRoleKey, mintUserJwt } from "../../stack/jwt.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { startFakeAgent, type FakeAgent } from "./support/fake-agent.ts";
import { call, countWrites, createFunctions, type FunctionsUnderTest } from "./support/functions.ts";

const IMAGE = "localhost/berth/http-echo:test";

const getDb = useTestDatabase();

describe("instance events route", () => {
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
    const toolbox = await call(functions.toolboxes, "POST", "/toolboxes", { token: ownerToken, body: { name: "events-box", agent_url: agent.url } });
    toolboxId = toolbox.body.toolbox.id;

    const deployed = await call(functions.instances, "POST", "/instances", {
      token: ownerToken,
      body: { toolbox_id: toolboxId, name: "storied", image: IMAGE, port: 8080 },
    });
    expect(deployed.status).toBe(201);
    instanceId = deployed.body.id;
    const stopped = await call(functions.instances, "POST", `/instances/${instanceId}/stop`, { token: ownerToken });
    expect(stopped.status).toBe(200);
  });

  afterAll(async () => {
    await functions?.close();
    await agent?.close();
  });

  /** Reads the instance's events from the table, oldest first, as the ground truth. */
  async function storedEvents(id: string) {
    return getDb().sql`
      select id::int as id, from_status::text, to_status::text, actor::text, reason_code, message, details, created_at
      from public.instance_events where instance_id = ${id} order by id`;
  }

  test("owner reads events oldest first", async () => {
    const stored = await storedEvents(instanceId);

    const response = await call(functions.instances, "GET", `/instances/${instanceId}/events`, { token: ownerToken });

    expect(response.status).toBe(200);
    const events = response.body.events;
    expect(events.map((event: { id: number }) => event.id)).toEqual(stored.map((row) => row.id));
    expect(events.map((event: { to_status: string }) => event.to_status)).toEqual(["pending", "deploying", "running", "stopping", "stopped"]);
    expect(events[0].from_status).toBeNull();
    expect(events[0].reason_code).toBe("Created");
    expect(events.at(-1).from_status).toBe("stopping");
    expect(events.every((event: { instance_id: string }) => event.instance_id === instanceId)).toBe(true);
  });

  test("event has the API fields only", async () => {
    const [latest] = (await storedEvents(instanceId)).slice(-1);

    const response = await call(functions.instances, "GET", `/instances/${instanceId}/events?limit=1`, { token: ownerToken });

    expect(response.body.events).toEqual([
      {
        id: latest?.id,
        instance_id: instanceId,
        from_status: latest?.from_status,
        to_status: latest?.to_status,
        actor: latest?.actor,
        reason_code: latest?.reason_code,
        message: latest?.message,
        details: latest?.details,
        created_at: new Date(latest?.created_at).toISOString(),
      },
    ]);
  });

  test("limit keeps the newest events", async () => {
    const response = await call(functions.instances, "GET", `/instances/${instanceId}/events?limit=2`, { token: ownerToken });

    expect(response.status).toBe(200);
    expect(response.body.events.map((event: { to_status: string }) => event.to_status)).toEqual(["stopping", "stopped"]);
  });

  test("before_id pages back", async () => {
    const stored = await storedEvents(instanceId);
    const newestTwo = await call(functions.instances, "GET", `/instances/${instanceId}/events?limit=2`, { token: ownerToken });
    const pageStart = newestTwo.body.events[0].id;

    const previous = await call(functions.instances, "GET", `/instances/${instanceId}/events?limit=2&before_id=${pageStart}`, { token: ownerToken });
    const first = await call(functions.instances, "GET", `/instances/${instanceId}/events?before_id=${stored[1]?.id}`, { token: ownerToken });
    const none = await call(functions.instances, "GET", `/instances/${instanceId}/events?before_id=${stored[0]?.id}`, { token: ownerToken });

    expect(previous.body.events.map((event: { id: number }) => event.id)).toEqual([stored[1]?.id, stored[2]?.id]);
    expect(first.body.events.map((event: { id: number }) => event.id)).toEqual([stored[0]?.id]);
    expect(none.status).toBe(200);
    expect(none.body.events).toEqual([]);
  });

  test("removed instance keeps its events", async () => {
    const deployed = await call(functions.instances, "POST", "/instances", {
      token: ownerToken,
      body: { toolbox_id: toolboxId, name: "gone", image: IMAGE, port: 8080 },
    });
    const removed = await call(functions.instances, "DELETE", `/instances/${deployed.body.id}`, { token: ownerToken });
    expect(removed.body.status).toBe("removed");

    const response = await call(functions.instances, "GET", `/instances/${deployed.body.id}/events`, { token: ownerToken });

    expect(response.status).toBe(200);
    expect(response.body.events.at(-1).to_status).toBe("removed");
    expect(response.body.events.every((event: { instance_id: string }) => event.instance_id === deployed.body.id)).toBe(true);
  });

  test("other user gets 404", async () => {
    const response = await call(functions.instances, "GET", `/instances/${instanceId}/events`, { token: otherToken });

    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe("instance_not_found");
    expect(response.text).not.toContain("deploying");
  });

  test("missing instance gets 404", async () => {
    const response = await call(functions.instances, "GET", `/instances/${randomUUID()}/events`, { token: ownerToken });

    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe("instance_not_found");
  });

  test("anon, service and missing tokens get 401", async () => {
    const before = await countWrites(getDb().sql);

    for (const token of [await mintAnonKey(), await mintServiceRoleKey(), null]) {
      const response = await call(functions.instances, "GET", `/instances/${instanceId}/events`, { token });

      expect(response.status, `token ${token === null ? "missing" : "given"}`).toBe(401);
      expect(response.body.error.code).toBe("unauthorized");
    }
    expect(await countWrites(getDb().sql)).toEqual(before);
  });

  test.each([
    ["limit 0", "limit=0", "limit"],
    ["limit above 1000", "limit=1001", "limit"],
    ["negative limit", "limit=-1", "limit"],
    ["fractional limit", "limit=2.5", "limit"],
    ["limit not a number", "limit=ten", "limit"],
    ["empty limit", "limit=", "limit"],
    ["before_id 0", "before_id=0", "before_id"],
    ["before_id not a number", "before_id=last", "before_id"],
    ["before_id of 16 digits", "before_id=1234567890123456", "before_id"],
  ])("rejects %s", async (_case, query, field) => {
    const response = await call(functions.instances, "GET", `/instances/${instanceId}/events?${query}`, { token: ownerToken });

    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("invalid_request");
    expect(response.body.error.details.fields.map((issue: { field: string }) => issue.field)).toEqual([field]);
    expect(response.body.error.message).toContain(field);
  });

  test("limit 1000 is accepted", async () => {
    const response = await call(functions.instances, "GET", `/instances/${instanceId}/events?limit=1000`, { token: ownerToken });

    expect(response.status).toBe(200);
    expect(response.body.events).toHaveLength(5);
  });

  test("POST on events is 405", async () => {
    const response = await call(functions.instances, "POST", `/instances/${instanceId}/events`, { token: ownerToken });

    expect(response.status).toBe(405);
    expect(response.body.error.code).toBe("method_not_allowed");
  });
});

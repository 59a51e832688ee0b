import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { HeartbeatResponse, type HeartbeatRequest, type InstanceObservation } from "@berth/shared";
import { deriveAgentToken } from "../../supabase/functions/_shared/agent-token.ts";
import { mintUserJwt } from "../../stack/jwt.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { call, createFunctions, TEST_AGENT_TOKEN_SECRET, type FunctionsUnderTest } from "./support/functions.ts";

const getDb = useTestDatabase();

describe("dtma-heartbeat function", () => {
  let functions: FunctionsUnderTest;
  let ownerId: string;
  let toolboxId: string;
  let otherToolboxId: string;
  let instanceId: string;
  let foreignInstanceId: string;

  beforeAll(async () => {
    functions = createFunctions({ databaseUrl: getDb().url });
    ownerId = await createUser(getDb().sql);
    const token = await mintUserJwt(ownerId);
    toolboxId = (await call(functions.toolboxes, "POST", "/toolboxes", { token, body: { name: "beat", agent_url: "http://127.0.0.1:30000" } })).body.toolbox.id;
    otherToolboxId = (await call(functions.toolboxes, "POST", "/toolboxes", { token, body: { name: "other", agent_url: "http://127.0.0.2:30000" } })).body.toolbox.id;
    instanceId = await createInstance(toolboxId, "local-tool");
    foreignInstanceId = await createInstance(otherToolboxId, "foreign-tool");
  });

  afterAll(async () => {
    await functions?.close();
  });

  async function createInstance(toolbox: string, name: string): Promise<string> {
    const [row] = await getDb().sql`select id from berth_private.create_instance(${ownerId}, ${toolbox}, ${name}, 'nginx:1.27', 80)`;
    return row!.id as string;
  }

  function observation(id: string, containerId: string): InstanceObservation {
    return {
      instance_id: id,
      container_id: containerId,
      state: "running",
      exit_code: null,
      oom_killed: false,
      restart_count: 0,
      generation: 1,
      host_port: 30001,
      started_at: "2026-01-02T03:04:05.000Z",
      finished_at: null,
      health: null,
    };
  }

  function heartbeat(instances: InstanceObservation[]): HeartbeatRequest {
    return { toolbox_id: toolboxId, agent_version: "0.1.0", engine_version: "26.1.0", sent_at: new Date().toISOString(), instances, events: [] };
  }

  async function snapshot() {
    const { sql } = getDb();
    return {
      toolboxes: await sql`select * from public.toolboxes order by id`,
      instances: await sql`select * from public.tool_instances order by id`,
      events: await sql`select count(*)::int as count from public.instance_events`,
    };
  }

  test("wrong token writes nothing", async () => {
    const before = await snapshot();
    const wrongTokens = [
      await deriveAgentToken(TEST_AGENT_TOKEN_SECRET, toolboxId, 2),
      await deriveAgentToken(TEST_AGENT_TOKEN_SECRET, otherToolboxId, 1),
      await deriveAgentToken("another-secret-that-is-long-enough-000000", toolboxId, 1),
      "not-a-token",
    ];

    for (const token of wrongTokens) {
      const response = await call(functions.heartbeat, "POST", "/dtma-heartbeat", { token, body: heartbeat([observation(instanceId, "c1")]) });
      expect(response.status).toBe(401);
      expect(response.body.error.code).toBe("unauthorized");
    }
    const missing = await call(functions.heartbeat, "POST", "/dtma-heartbeat", { body: heartbeat([observation(instanceId, "c1")]) });
    expect(missing.status).toBe(401);
    expect(await snapshot()).toEqual(before);
  });

  test("unknown toolbox gets 401", async () => {
    const unknown = randomUUID();
    const token = await deriveAgentToken(TEST_AGENT_TOKEN_SECRET, unknown, 1);

    const response = await call(functions.heartbeat, "POST", "/dtma-heartbeat", { token, body: { ...heartbeat([]), toolbox_id: unknown } });

    expect(response.status).toBe(401);
  });

  test("valid heartbeat records contact and observations", async () => {
    const token = await deriveAgentToken(TEST_AGENT_TOKEN_SECRET, toolboxId, 1);

    const response = await call(functions.heartbeat, "POST", "/dtma-heartbeat", { token, body: heartbeat([observation(instanceId, "container-a")]) });

    expect(response.status).toBe(200);
    const body = HeartbeatResponse.parse(response.body);
    expect(body.toolbox_status).toBe("active");
    expect(body.instances_changed).toBe(1);
    const [toolbox] = await getDb().sql`select status, agent_version, last_heartbeat_at from public.toolboxes where id = ${toolboxId}`;
    expect(toolbox!.status).toBe("active");
    expect(toolbox!.agent_version).toBe("0.1.0");
    expect(Date.now() - new Date(toolbox!.last_heartbeat_at).getTime()).toBeLessThan(60_000);
    const [instance] = await getDb().sql`select container_id, docker_state, observed_generation from public.tool_instances where id = ${instanceId}`;
    expect(instance).toEqual({ container_id: "container-a", docker_state: "running", observed_generation: "1" });
  });

  test("unreachable toolbox becomes active", async () => {
    await getDb().sql`update public.toolboxes set status = 'unreachable' where id = ${toolboxId}`;
    const token = await deriveAgentToken(TEST_AGENT_TOKEN_SECRET, toolboxId, 1);

    const response = await call(functions.heartbeat, "POST", "/dtma-heartbeat", { token, body: heartbeat([observation(instanceId, "container-a")]) });

    expect(response.status).toBe(200);
    expect(response.body.toolbox_status).toBe("active");
    expect(response.body.instances_changed).toBe(0);
  });

  test("instance of another toolbox is ignored", async () => {
    const token = await deriveAgentToken(TEST_AGENT_TOKEN_SECRET, toolboxId, 1);
    const [foreignBefore] = await getDb().sql`select * from public.tool_instances where id = ${foreignInstanceId}`;
    const linesBefore = functions.logLines.length;

    const response = await call(functions.heartbeat, "POST", "/dtma-heartbeat", {
      token,
      body: heartbeat([observation(instanceId, "container-a"), observation(foreignInstanceId, "stolen")]),
    });

    expect(response.status).toBe(200);
    expect(response.body.ignored_instance_ids).toEqual([foreignInstanceId]);
    const [foreignAfter] = await getDb().sql`select * from public.tool_instances where id = ${foreignInstanceId}`;
    expect(foreignAfter).toEqual(foreignBefore);
    const warning = functions.logLines.slice(linesBefore).map((line) => JSON.parse(line)).find((line) => line.level === "warn");
    expect(warning?.instance_ids).toEqual([foreignInstanceId]);
  });

  test("rotated token replaces the old one", async () => {
    const token = await mintUserJwt(ownerId);
    const oldToken = await deriveAgentToken(TEST_AGENT_TOKEN_SECRET, otherToolboxId, 1);
    const rotated = await call(functions.toolboxes, "POST", `/toolboxes/${otherToolboxId}/rotate-token`, { token });
    const body = { ...heartbeat([]), toolbox_id: otherToolboxId };

    const withOld = await call(functions.heartbeat, "POST", "/dtma-heartbeat", { token: oldToken, body });
    const withNew = await call(functions.heartbeat, "POST", "/dtma-heartbeat", { token: rotated.body.agent_token, body });

    expect(withOld.status).toBe(401);
    expect(withNew.status).toBe(200);
  });

  test("invalid body names the field", async () => {
    const token = await deriveAgentToken(TEST_AGENT_TOKEN_SECRET, toolboxId, 1);

    const response = await call(functions.heartbeat, "POST", "/dtma-heartbeat", { token, body: { ...heartbeat([]), sent_at: "yesterday" } });

    expect(response.status).toBe(400);
    expect(response.body.error.details.fields[0].field).toBe("sent_at");
  });

  test("tokens never reach the log", async () => {
    const token = await deriveAgentToken(TEST_AGENT_TOKEN_SECRET, toolboxId, 1);
    await call(functions.heartbeat, "POST", "/dtma-heartbeat", { token, body: heartbeat([]) });

    expect(functions.logLines.join("\n")).not.toContain(token);
  });
});

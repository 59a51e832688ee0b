// The client against the real instances, toolboxes and reconcile functions, served by Deno
// behind the local gateway with a real database. The agent on the toolbox is the fake one from
// the functions' test support. It follows the agent's HTTP contract and can hang or fail on
// demand, and containers are not the subject here.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createBerthClient, type BerthClient } from "../src/index.ts";
import { BerthError } from "../src/errors.ts";
import { createNodeSupabaseClient } from "../src/cli/connect.ts";
import { mintUserJwt } from "../../../stack/jwt.ts";
import { freePort } from "../../../stack/net.ts";
import { createUser, useTestDatabase } from "../../../tests/support/db.ts";
import { startFakeAgent, type FakeAgent } from "../../../tests/functions/support/fake-agent.ts";
import { startFunctionStack, type FunctionStack } from "./support/function-stack.ts";

const STACK_START_TIMEOUT_MS = 180_000;
const IMAGE = "ghcr.io/example/mcp-server:1.0";

/** Returns the BerthError a promise rejects with; fails when it resolves or rejects otherwise. */
async function berthError(promise: Promise<unknown>): Promise<BerthError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (outcome instanceof BerthError) return outcome;
  throw new Error(`expected a BerthError, got ${outcome === undefined ? "success" : String(outcome)}`);
}

describe("client against the functions", () => {
  const db = useTestDatabase();
  let stack: FunctionStack;
  let agent: FakeAgent;
  let berth: BerthClient;
  let stranger: BerthClient;
  let service: BerthClient;
  let toolboxId: string;

  beforeAll(async () => {
    agent = await startFakeAgent();
    stack = await startFunctionStack(db().url);
    const client = async () => createBerthClient(createNodeSupabaseClient(stack.url, stack.anonKey, await mintUserJwt(await createUser(db().sql))));
    berth = await client();
    stranger = await client();
    service = createBerthClient(createNodeSupabaseClient(stack.url, stack.serviceRoleKey, stack.serviceRoleKey));

    const created = await berth.toolboxes.create({ name: "main", agent_url: agent.url });
    toolboxId = created.toolbox.id;
  }, STACK_START_TIMEOUT_MS);

  afterAll(async () => {
    await stack?.stop();
    await agent?.close();
  });

  describe("toolboxes", () => {
    test("create returns token once", async () => {
      const created = await berth.toolboxes.create({ name: "second", agent_url: agent.url });

      expect(created.toolbox.name).toBe("second");
      expect(created.agent_token.length).toBeGreaterThan(20);
      expect(created.install_command).toContain(created.agent_token);
      expect(JSON.stringify(await berth.toolboxes.get(created.toolbox.id))).not.toContain(created.agent_token);
    });

    test("list and get own toolboxes", async () => {
      const listed = await berth.toolboxes.list();
      const fetched = await berth.toolboxes.get(toolboxId);

      expect(listed.map((toolbox) => toolbox.id)).toContain(toolboxId);
      expect(fetched.id).toBe(toolboxId);
      expect(fetched.agent_url).toBe(agent.url);
    });

    test("rotate token bumps version", async () => {
      const before = await berth.toolboxes.get(toolboxId);

      const rotated = await berth.toolboxes.rotateToken(toolboxId);

      expect(rotated.toolbox.token_version).toBe(before.token_version + 1);
      expect(rotated.agent_token.length).toBeGreaterThan(20);
    });

    test("other owner's toolbox is not found", async () => {
      const error = await berthError(stranger.toolboxes.get(toolboxId));

      expect(error.status).toBe(404);
      expect(error.code).toBe("toolbox_not_found");
    });

    test("invalid create is rejected before sending", async () => {
      const error = await berthError(berth.toolboxes.create({ name: "Not A Label", agent_url: agent.url }));

      expect(error.code).toBe("invalid_request");
      expect(error.status).toBe(0);
      expect(error.details).toMatchObject({ fields: [{ field: "name" }] });
    });
  });

  describe("instances", () => {
    test("deploy returns running row", async () => {
      const secret = `secret-${randomUUID()}`;

      const result = await berth.instances.deploy({ toolbox_id: toolboxId, name: "deployed", image: IMAGE, port: 8080, env: { MODE: "fast" }, secrets: { API_KEY: secret } });

      expect(result.inProgress).toBe(false);
      expect(result.instance.status).toBe("running");
      expect(result.instance.env).toEqual({ MODE: "fast" });
      expect(result.instance.secret_names).toEqual(["API_KEY"]);
      expect(result.instance.endpoint).toBe(`http://127.0.0.1:${result.instance.host_port}/mcp`);
      expect(JSON.stringify(result)).not.toContain(secret);
      expect(stack.output.join("\n")).not.toContain(secret);
    });

    test("list, get and logs", async () => {
      const { instance } = await berth.instances.deploy({ toolbox_id: toolboxId, name: "readable", image: IMAGE, port: 8080 });

      const listed = await berth.instances.list();
      const onToolbox = await berth.instances.list({ toolboxId });
      const fetched = await berth.instances.get(instance.id);
      const logs = await berth.instances.logs(instance.id, { tail: 10 });

      expect(listed.map((row) => row.id)).toContain(instance.id);
      expect(onToolbox.every((row) => row.toolbox_id === toolboxId)).toBe(true);
      expect(fetched.name).toBe("readable");
      expect(logs.instance_id).toBe(instance.id);
      expect(logs.lines.map((line) => line.text)).toEqual(["fake log line"]);
    });

    test("stop, start and restart", async () => {
      const { instance } = await berth.instances.deploy({ toolbox_id: toolboxId, name: "cycled", image: IMAGE, port: 8080 });

      const stopped = await berth.instances.stop(instance.id);
      expect(stopped.inProgress).toBe(false);
      expect(stopped.instance.status).toBe("stopped");
      expect(stopped.instance.desired_state).toBe("stopped");

      const started = await berth.instances.start(instance.id);
      expect(started.instance.status).toBe("running");

      const restarted = await berth.instances.restart(instance.id);
      expect(restarted.instance.status).toBe("running");
      expect(agent.requests.some((request) => request.path === `/v1/instances/${instance.id}/restart`)).toBe(true);
    });

    test("remove marks the row removed", async () => {
      const { instance } = await berth.instances.deploy({ toolbox_id: toolboxId, name: "doomed", image: IMAGE, port: 8080 });

      const removed = await berth.instances.remove(instance.id);

      expect(removed.instance.status).toBe("removed");
      expect(removed.instance.desired_state).toBe("removed");
      expect((await berth.instances.list()).map((row) => row.id)).not.toContain(instance.id);
    });

    test("events page back oldest first", async () => {
      const { instance } = await berth.instances.deploy({ toolbox_id: toolboxId, name: "storied", image: IMAGE, port: 8080 });
      await berth.instances.stop(instance.id);

      const all = await berth.instances.events(instance.id);
      const newest = await berth.instances.events(instance.id, { limit: 2 });
      const previous = await berth.instances.events(instance.id, { limit: 2, beforeId: newest[0]?.id });

      expect(all.map((event) => event.to_status)).toEqual(["pending", "deploying", "running", "stopping", "stopped"]);
      expect(all[0]?.from_status).toBeNull();
      expect(newest.map((event) => event.id)).toEqual(all.slice(-2).map((event) => event.id));
      expect(previous.map((event) => event.id)).toEqual(all.slice(1, 3).map((event) => event.id));
    });

    test("other owner's events are not found", async () => {
      const { instance } = await berth.instances.deploy({ toolbox_id: toolboxId, name: "diary", image: IMAGE, port: 8080 });

      const error = await berthError(stranger.instances.events(instance.id));

      expect(error.status).toBe(404);
      expect(error.code).toBe("instance_not_found");
    });

    test("invalid events limit names the field", async () => {
      const { instance } = await berth.instances.deploy({ toolbox_id: toolboxId, name: "limited", image: IMAGE, port: 8080 });

      const error = await berthError(berth.instances.events(instance.id, { limit: 0 }));

      expect(error.status).toBe(400);
      expect(error.code).toBe("invalid_request");
      expect(error.details).toMatchObject({ fields: [{ field: "limit" }] });
    });

    test("client words invalid deploy fields", async () => {
      const request = { toolbox_id: toolboxId, name: "worded", port: 80.5, env: { FOO: 1 } } as unknown as Parameters<BerthClient["instances"]["deploy"]>[0];

      const error = await berthError(berth.instances.deploy(request));

      expect(error.status).toBe(0);
      expect(error.message).toBe("invalid deploy request: image is required; port must be a whole number; env.FOO must be a string");
      expect(error.details).toEqual({
        fields: [
          { field: "image", message: "is required" },
          { field: "port", message: "must be a whole number" },
          { field: "env.FOO", message: "must be a string" },
        ],
      });
    });

    test("function words missing deploy fields", async () => {
      const token = await mintUserJwt(await createUser(db().sql));

      const response = await fetch(`${stack.url}/functions/v1/instances`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ toolbox_id: toolboxId, port: "8080" }),
      });

      expect(response.status).toBe(400);
      const { error } = (await response.json()) as { error: { code: string; message: string; details: unknown } };
      expect(error.code).toBe("invalid_request");
      expect(error.message).toBe("invalid request body: name is required; image is required; port must be a whole number");
      expect(error.details).toEqual({
        fields: [
          { field: "name", message: "is required" },
          { field: "image", message: "is required" },
          { field: "port", message: "must be a whole number" },
        ],
      });
    });

    test("idempotency key replays deploy", async () => {
      const key = randomUUID();
      const request = { toolbox_id: toolboxId, name: "replayed", image: IMAGE, port: 8080 };

      const first = await berth.instances.deploy(request, { idempotencyKey: key });
      const second = await berth.instances.deploy(request, { idempotencyKey: key });

      expect(second.instance.id).toBe(first.instance.id);
    });

    test("slow agent gives 202 in progress", { timeout: 30_000 }, async () => {
      agent.mode = "hang";
      try {
        const result = await berth.instances.deploy({ toolbox_id: toolboxId, name: "slow", image: IMAGE, port: 8080 });

        expect(result.inProgress).toBe(true);
        expect(["deploying", "pending", "unknown"]).toContain(result.instance.status);
        expect(result.instance.desired_state).toBe("running");
      } finally {
        agent.mode = "ok";
      }
    });

    test("taken name is a conflict", async () => {
      await berth.instances.deploy({ toolbox_id: toolboxId, name: "taken", image: IMAGE, port: 8080 });

      const error = await berthError(berth.instances.deploy({ toolbox_id: toolboxId, name: "taken", image: IMAGE, port: 8080 }));

      expect(error.status).toBe(409);
      expect(error.code).toBe("name_taken");
    });

    test("missing image is the agent's error", async () => {
      agent.mode = "image_not_found";
      try {
        const error = await berthError(berth.instances.deploy({ toolbox_id: toolboxId, name: "imageless", image: IMAGE, port: 8080 }));

        expect(error.code).toBe("image_not_found");
        expect(error.status).toBe(404);
      } finally {
        agent.mode = "ok";
      }
    });

    test("unknown instance is not found", async () => {
      const error = await berthError(berth.instances.get(randomUUID()));

      expect(error.status).toBe(404);
      expect(error.code).toBe("instance_not_found");
    });

    test("other owner's instance is not found", async () => {
      const { instance } = await berth.instances.deploy({ toolbox_id: toolboxId, name: "private", image: IMAGE, port: 8080 });

      const error = await berthError(stranger.instances.stop(instance.id));

      expect(error.code).toBe("instance_not_found");
      expect((await berth.instances.get(instance.id)).status).toBe("running");
    });

    test("malformed id carries field issues", async () => {
      const error = await berthError(berth.instances.get("not-a-uuid"));

      expect(error.status).toBe(400);
      expect(error.code).toBe("invalid_request");
      expect(error.details).toMatchObject({ fields: expect.any(Array) });
    });

    test("invalid deploy is rejected before sending", async () => {
      const error = await berthError(berth.instances.deploy({ toolbox_id: toolboxId, name: "ok-name", image: "Bad Image", port: 0 }));

      expect(error.code).toBe("invalid_request");
      expect(error.status).toBe(0);
      const fields = (error.details as { fields: Array<{ field: string }> }).fields.map((issue) => issue.field);
      expect(fields).toEqual(expect.arrayContaining(["image", "port"]));
    });
  });

  describe("decommission and reconcile", () => {
    test("toolbox with instances is not empty", async () => {
      const error = await berthError(berth.toolboxes.decommission(toolboxId));

      expect(error.status).toBe(409);
      expect(error.code).toBe("toolbox_not_empty");
    });

    test("empty toolbox is decommissioned", async () => {
      const created = await berth.toolboxes.create({ name: "empty", agent_url: agent.url });

      const decommissioned = await berth.toolboxes.decommission(created.toolbox.id);

      expect(decommissioned.id).toBe(created.toolbox.id);
      expect(decommissioned.status).toBe("decommissioned");
    });

    test("reconcile needs the service role", async () => {
      const error = await berthError(berth.reconcile());

      expect(error.status).toBe(403);
      expect(error.code).toBe("forbidden");
    });

    test("reconcile runs a pass", { timeout: 60_000 }, async () => {
      const result = await service.reconcile({ source: "client-test" });

      expect(["succeeded", "partial", "skipped"]).toContain(result.status);
      if (result.status !== "skipped") expect(result.toolboxes_checked).toBeGreaterThanOrEqual(1);
    });
  });

  describe("transport failures", () => {
    test("closed port is a network error", async () => {
      const closed = `http://127.0.0.1:${await freePort()}`;
      const client = createBerthClient(createNodeSupabaseClient(closed, stack.anonKey, stack.anonKey));

      const error = await berthError(client.toolboxes.list());

      expect(error.code).toBe("network_error");
      expect(error.status).toBe(0);
      expect(error.message).toContain("ECONNREFUSED");
    });

    test("anon key is unauthorized", async () => {
      const client = createBerthClient(createNodeSupabaseClient(stack.url, stack.anonKey, stack.anonKey));

      const error = await berthError(client.instances.list());

      expect(error.status).toBe(401);
      expect(error.code).toBe("unauthorized");
    });
  });
});

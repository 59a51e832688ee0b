// The instances function against a fake agent: a node HTTP server in this process, defined in
// support/fake-agent.ts. It produces what a real engine does not on demand: calls that hang,
// 500s, a host port taken on the host, and calls slow enough to overlap.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { InstanceResponse } from "@berth/shared";
import { freePort } from "../../stack/net.ts";
import { mintUserJwt } from "../../stack/jwt.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { startFakeAgent, type FakeAgent } from "./support/fake-agent.ts";
import { call, countWrites, createFunctions, type FunctionsUnderTest } from "./support/functions.ts";

const AGENT_TIMEOUT_MS = 500;
const LEASE_TTL_SECONDS = 3;
const IMAGE = "localhost/berth/http-echo:test";

const getDb = useTestDatabase();

describe("instances function with a misbehaving agent", () => {
  let functions: FunctionsUnderTest;
  let agent: FakeAgent;
  let token: string;
  let toolboxId: string;
  let nameCounter = 0;

  beforeAll(async () => {
    agent = await startFakeAgent();
    functions = createFunctions({ databaseUrl: getDb().url, agentTimeoutMs: AGENT_TIMEOUT_MS, leaseTtlSeconds: LEASE_TTL_SECONDS });
    token = await mintUserJwt(await createUser(getDb().sql));
    toolboxId = await createToolbox("fake", agent.url);
  });

  afterAll(async () => {
    await functions?.close();
    await agent?.close();
  });

  beforeEach(() => {
    agent.mode = "ok";
    agent.delayMs = 0;
    agent.portInUseCount = 0;
  });

  async function createToolbox(name: string, agentUrl: string): Promise<string> {
    const created = await call(functions.toolboxes, "POST", "/toolboxes", { token, body: { name, agent_url: agentUrl } });
    expect(created.status).toBe(201);
    return created.body.toolbox.id as string;
  }

  async function deploy(overrides: Record<string, unknown> = {}) {
    nameCounter += 1;
    return call(functions.instances, "POST", "/instances", {
      token,
      body: { toolbox_id: toolboxId, name: `tool-${nameCounter}`, image: IMAGE, port: 8080, ...overrides },
    });
  }

  async function deployRunning(): Promise<InstanceResponse> {
    const deployed = await deploy();
    expect(deployed.status).toBe(201);
    return InstanceResponse.parse(deployed.body);
  }

  async function row(id: string) {
    const [found] = await getDb().sql`select * from public.tool_instances where id = ${id}`;
    return found!;
  }

  async function eventsAfter(id: string, afterEventId: number) {
    return getDb().sql`
      select id, from_status, to_status, actor, reason_code from public.instance_events
      where instance_id = ${id} and id > ${afterEventId} order by id`;
  }

  async function lastEventId(): Promise<number> {
    const [last] = await getDb().sql`select coalesce(max(id), 0)::int as id from public.instance_events`;
    return last!.id as number;
  }

  test("deploy sends spec generation and secrets", async () => {
    const deployed = await deploy({ env: { MODE: "test" }, secrets: { API_KEY: "fake-agent-secret" } });

    expect(deployed.status).toBe(201);
    const instance = InstanceResponse.parse(deployed.body);
    expect(instance.status).toBe("running");
    expect(instance.status_reason_code).toBe("ContainerRunning");
    const put = agent.requests.find((request) => request.method === "PUT" && request.path === `/v1/instances/${instance.id}`);
    expect(put?.body.generation).toBe(instance.spec_generation);
    expect(put?.body.env).toEqual({ MODE: "test", API_KEY: "fake-agent-secret" });
    expect(put?.body.host_port).toBe(instance.host_port);
    expect(deployed.text).not.toContain("fake-agent-secret");
  });

  test("stop and start keep the container", async () => {
    const instance = await deployRunning();
    const requestsBefore = agent.requests.length;

    const stopped = await call(functions.instances, "POST", `/instances/${instance.id}/stop`, { token });
    const started = await call(functions.instances, "POST", `/instances/${instance.id}/start`, { token });

    expect(stopped.status).toBe(200);
    expect(stopped.body.status).toBe("stopped");
    expect(started.status).toBe(200);
    expect(started.body.status).toBe("running");
    expect(started.body.spec_generation).toBe(instance.spec_generation);
    expect(started.body.generation).toBe(instance.generation + 2);
    const calls = agent.requests.slice(requestsBefore).map((request) => `${request.method} ${request.path}`);
    expect(calls).toEqual([`POST /v1/instances/${instance.id}/stop`, `POST /v1/instances/${instance.id}/start`]);
  });

  test("agent timeout answers 202 and keeps the lease", async () => {
    const instance = await deployRunning();
    agent.mode = "hang";

    const started = await call(functions.instances, "POST", `/instances/${instance.id}/start`, { token });

    expect(started.status).toBe(202);
    expect(started.body.status).toBe("starting");
    const leased = await row(instance.id);
    expect(leased.status).toBe("starting");
    expect(leased.lease_nonce).not.toBeNull();
    const remainingMs = new Date(leased.lease_expires_at).getTime() - Date.now();
    expect(remainingMs).toBeGreaterThan(0);
    expect(remainingMs).toBeLessThanOrEqual(LEASE_TTL_SECONDS * 1000);
    expect(started.body.lease_expires_at).toBe(new Date(leased.lease_expires_at).toISOString());

    const writesBefore = await countWrites(getDb().sql);
    const blocked = await call(functions.instances, "POST", `/instances/${instance.id}/stop`, { token });
    expect(blocked.status).toBe(409);
    expect(blocked.body.error.code).toBe("lease_held");
    expect(await countWrites(getDb().sql)).toEqual(writesBefore);

    await expect(functions.registry.claimInstanceLease(instance.id, "test:early", 5)).rejects.toMatchObject({ code: "lease_held" });
    await sleep(Math.max(0, new Date(leased.lease_expires_at).getTime() - Date.now()) + 100);
    const claimed = await functions.registry.claimInstanceLease(instance.id, "test:after-expiry", 5);
    expect(claimed.lease_holder).toBe("test:after-expiry");
    await functions.registry.releaseInstanceLease(instance.id, claimed.lease_nonce!);
  });

  test("agent 500 answers 502 and releases", async () => {
    const instance = await deployRunning();
    agent.mode = "error500";

    const stopped = await call(functions.instances, "POST", `/instances/${instance.id}/stop`, { token });

    expect(stopped.status).toBe(502);
    expect(stopped.body.error.code).toBe("agent_error");
    expect(stopped.body.error.details.instance.id).toBe(instance.id);
    const after = await row(instance.id);
    expect(after.status_reason_code).toBe("AgentError");
    expect(after.status_reason).toContain("the engine failed");
    expect(after.lease_nonce).toBeNull();
    expect(after.lease_holder).toBeNull();
    expect(after.lease_expires_at).toBeNull();
  });

  test("unreachable agent answers 503", async () => {
    const deadToolbox = await createToolbox("dead", `http://127.0.0.1:${await freePort()}`);

    const deployed = await deploy({ toolbox_id: deadToolbox });

    expect(deployed.status).toBe(503);
    expect(deployed.body.error.code).toBe("agent_unreachable");
    const after = await row(deployed.body.error.details.instance.id);
    expect(after.status).toBe("deploying");
    expect(after.status_reason_code).toBe("AgentError");
    expect(after.lease_nonce).toBeNull();
  });

  test("missing image fails the instance", async () => {
    agent.mode = "image_not_found";

    const deployed = await deploy();

    expect(deployed.status).toBe(404);
    expect(deployed.body.error.code).toBe("image_not_found");
    const after = await row(deployed.body.error.details.instance.id);
    expect(after.status).toBe("failed");
    expect(after.status_reason_code).toBe("ImageNotFound");
    expect(after.lease_nonce).toBeNull();
  });

  test("port in use moves the instance", async () => {
    agent.portInUseCount = 1;
    const requestsBefore = agent.requests.length;

    const deployed = await deploy();

    expect(deployed.status).toBe(201);
    const instance = InstanceResponse.parse(deployed.body);
    const puts = agent.requests.slice(requestsBefore).filter((request) => request.method === "PUT");
    expect(puts).toHaveLength(2);
    expect(instance.host_port).not.toBe(puts[0]!.body.host_port);
    expect(puts[1]!.body.host_port).toBe(instance.host_port);
    expect(puts[1]!.body.generation).toBe(instance.spec_generation);
    expect(instance.spec_generation).toBe(2);
    expect(instance.status).toBe("running");
  });

  test("port in use moves several times", async () => {
    agent.portInUseCount = 4;
    const requestsBefore = agent.requests.length;

    const deployed = await deploy();

    expect(deployed.status, deployed.text).toBe(201);
    const instance = InstanceResponse.parse(deployed.body);
    const ports = agent.requests.slice(requestsBefore).filter((request) => request.method === "PUT").map((request) => request.body.host_port);
    expect(ports).toHaveLength(5);
    expect(new Set(ports).size).toBe(5);
    expect(ports[4]).toBe(instance.host_port);
    expect(instance.spec_generation).toBe(5);
    expect(instance.status).toBe("running");
    expect(instance.status_reason_code).toBe("ContainerRunning");
    const [final] = await getDb().sql`
      select details from public.instance_events where instance_id = ${instance.id} and to_status = 'running'`;
    expect(final!.details.host_port_moves).toHaveLength(4);
    expect(final!.details.host_port_moves[3]).toEqual({ from: ports[3], to: ports[4] });
  });

  test("port in use fails after five moves", async () => {
    agent.portInUseCount = 100;
    const requestsBefore = agent.requests.length;

    const deployed = await deploy();

    expect(deployed.status).toBe(409);
    expect(deployed.body.error.code).toBe("port_in_use");
    const ports = agent.requests.slice(requestsBefore).filter((request) => request.method === "PUT").map((request) => request.body.host_port);
    expect(ports).toHaveLength(6);
    const after = await row(deployed.body.error.details.instance.id);
    expect(after.status).toBe("failed");
    expect(after.status_reason_code).toBe("PortInUse");
    expect(after.host_port).toBe(ports[5]);
    expect(after.status_reason).toContain(`Host ports tried: ${ports.join(", ")}.`);
    expect(after.lease_nonce).toBeNull();
  });

  test("start on a taken port moves it", async () => {
    const instance = await deployRunning();
    const stopped = await call(functions.instances, "POST", `/instances/${instance.id}/stop`, { token });
    expect(stopped.status).toBe(200);
    const baseline = await lastEventId();
    agent.portInUseCount = 1;
    const requestsBefore = agent.requests.length;

    const started = await call(functions.instances, "POST", `/instances/${instance.id}/start`, { token });

    expect(started.status, started.text).toBe(200);
    const after = InstanceResponse.parse(started.body);
    expect(after.status).toBe("running");
    expect(after.host_port).not.toBe(instance.host_port);
    const calls = agent.requests.slice(requestsBefore).map((request) => `${request.method} ${request.path}`);
    expect(calls).toEqual([`POST /v1/instances/${instance.id}/start`, `PUT /v1/instances/${instance.id}`]);
    const events = (await eventsAfter(instance.id, baseline)).map((event) => `${event.from_status} → ${event.to_status} ${event.reason_code}`);
    expect(events).toEqual(["stopped → starting StartRequested", "starting → deploying PortInUse", "deploying → running ContainerRunning"]);
  });

  test("start while stop holds the lease", async () => {
    const instance = await deployRunning();
    const baseline = await lastEventId();
    agent.delayMs = 400;

    const stopping = call(functions.instances, "POST", `/instances/${instance.id}/stop`, { token });
    await waitForLeasedStatus(instance.id, "stopping");
    const writesBefore = await countWrites(getDb().sql);
    const started = await call(functions.instances, "POST", `/instances/${instance.id}/start`, { token });
    const writesAfter = await countWrites(getDb().sql);
    const stopped = await stopping;

    expect(started.status).toBe(409);
    expect(started.body.error.code).toBe("lease_held");
    expect(writesAfter.events).toBe(writesBefore.events);
    expect(stopped.status).toBe(200);
    const after = await row(instance.id);
    expect(after.desired_state).toBe("stopped");
    expect(after.status).toBe("stopped");
    const events = await eventsAfter(instance.id, baseline);
    expect(events.map((event) => `${event.from_status}>${event.to_status}:${event.reason_code}`)).toEqual([
      "running>stopping:StopRequested",
      "stopping>stopped:ContainerStopped",
    ]);
  });

  test("simultaneous start and stop", async () => {
    const instance = await deployRunning();
    const baseline = await lastEventId();
    agent.delayMs = 400;

    const [started, stopped] = await Promise.all([
      call(functions.instances, "POST", `/instances/${instance.id}/start`, { token }),
      call(functions.instances, "POST", `/instances/${instance.id}/stop`, { token }),
    ]);

    const statuses = [started.status, stopped.status].sort();
    expect(statuses).toEqual([200, 409]);
    const loser = started.status === 409 ? started : stopped;
    expect(loser.body.error.code).toBe("lease_held");

    // The loser's intent counts when it was recorded before its claim failed; then the winner
    // carries it out. Either way the final status is the last accepted intent.
    const after = await row(instance.id);
    expect(after.status).toBe(after.desired_state);
    expect(after.lease_nonce).toBeNull();
    const events = await eventsAfter(instance.id, baseline);
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events[0]!.from_status).toBe("running");
    for (let index = 1; index < events.length; index += 1) {
      expect(events[index]!.from_status).toBe(events[index - 1]!.to_status);
    }
    expect(events.at(-1)!.to_status).toBe(after.desired_state);
    expect(events.every((event) => event.actor === "user")).toBe(true);
  });

  test("intent recorded meanwhile is carried out", async () => {
    const instance = await deployRunning();
    const baseline = await lastEventId();
    agent.delayMs = 400;

    const stopping = call(functions.instances, "POST", `/instances/${instance.id}/stop`, { token });
    await waitForLeasedStatus(instance.id, "stopping");
    // What a start request does when its lease check passed just before the stop claimed.
    const leased = await row(instance.id);
    await functions.registry.recordIntent(instance.id, Number(leased.version), "running");
    const stopped = await stopping;

    expect(stopped.status).toBe(200);
    expect(stopped.body.status).toBe("running");
    expect(stopped.body.desired_state).toBe("running");
    const events = await eventsAfter(instance.id, baseline);
    expect(events.map((event) => `${event.from_status}>${event.to_status}:${event.reason_code}`)).toEqual([
      "running>stopping:StopRequested",
      "stopping>stopped:ContainerStopped",
      "stopped>starting:StartRequested",
      "starting>running:ContainerRunning",
    ]);
  });

  test("delete removes the container", async () => {
    const instance = await deployRunning();

    const removed = await call(functions.instances, "DELETE", `/instances/${instance.id}`, { token });
    const again = await call(functions.instances, "DELETE", `/instances/${instance.id}`, { token });

    expect(removed.status).toBe(200);
    expect(removed.body.status).toBe("removed");
    expect(removed.body.status_reason_code).toBe("ContainerRemoved");
    expect(agent.containers.has(instance.id)).toBe(false);
    expect(again.status).toBe(200);
    expect(again.body.status).toBe("removed");
  });

  test("removed instance has no endpoint", async () => {
    const instance = await deployRunning();
    expect(instance.endpoint).toBe(`http://127.0.0.1:${instance.host_port}/mcp`);

    const removed = await call(functions.instances, "DELETE", `/instances/${instance.id}`, { token });
    const read = await call(functions.instances, "GET", `/instances/${instance.id}`, { token });

    expect(removed.status).toBe(200);
    expect(InstanceResponse.parse(removed.body).endpoint).toBeNull();
    expect(read.status).toBe(200);
    expect(InstanceResponse.parse(read.body).status).toBe("removed");
    expect(InstanceResponse.parse(read.body).endpoint).toBeNull();
  });

  test("summary line keeps the HTTP status", async () => {
    const instance = await deployRunning();
    const linesBefore = functions.logLines.length;

    await call(functions.instances, "POST", `/instances/${instance.id}/stop`, { token, headers: { "x-request-id": "stop-summary" } });

    const summary = functions.logLines.slice(linesBefore).map((line) => JSON.parse(line)).find((line) => line.msg === "request finished");
    expect(summary).toMatchObject({ request_id: "stop-summary", status: 200, instance_status: "stopped", outcome: "done", action: "stop" });
    expect(summary.instance_id).toBe(instance.id);
    expect(summary.toolbox_id).toBe(toolboxId);
  });

  test("logs come from the agent", async () => {
    const instance = await deployRunning();

    const logs = await call(functions.instances, "GET", `/instances/${instance.id}/logs?tail=5`, { token });

    expect(logs.status).toBe(200);
    expect(logs.body.lines).toEqual([{ stream: "stdout", time: null, text: "fake log line" }]);
    expect(agent.requests.at(-1)?.path).toBe(`/v1/instances/${instance.id}/logs`);
  });

  /**
   * Waits until an operation holds the lease and has written its transitional status. The lease
   * alone is not enough: the status write that follows it would land in the middle of a test.
   */
  async function waitForLeasedStatus(id: string, status: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const current = await row(id);
      if (current.lease_nonce !== null && current.status === status) return;
      await sleep(20);
    }
    throw new Error(`instance ${id} did not reach ${status} under a lease within 5 s`);
  }
});

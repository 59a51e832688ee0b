// The instances function with the real agent (the DTMA, in this process) on the real container
// engine: deploys, lost containers, idempotent retries and secrets end to end.
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, test } from "vitest";
import { DockerEngine, createLogger as createAgentLogger, loadConfig, serveAgent, type RunningAgent } from "@berth/dtma";
import { InstanceListResponse, InstanceLogsResponse, InstanceResponse, LABEL_INSTANCE_ID, LABEL_TOOLBOX_ID } from "@berth/shared";
import { ensureImage, HTTP_ECHO_PORT } from "../../stack/images.ts";
import { mintUserJwt } from "../../stack/jwt.ts";
import { freePort } from "../../stack/net.ts";
import { asJwt, createUser, useTestDatabase } from "../support/db.ts";
import { describeWithEngine, removeLabeledContainers } from "../support/engine.ts";
import { deriveAgentToken } from "../../supabase/functions/_shared/agent-token.ts";
import { call, createFunctions, isolatePortRange, TEST_AGENT_TOKEN_SECRET, type FunctionsUnderTest, type Handler } from "./support/functions.ts";

const IMAGE_BUILD_TIMEOUT_MS = 240_000;

const getDb = useTestDatabase();

describeWithEngine("instances function on a real agent", (engine) => {
  let functions: FunctionsUnderTest;
  let agent: RunningAgent;
  const agentLogLines: string[] = [];
  let echoImage: string;
  let ownerToken: string;
  let toolboxId = "";
  let nameCounter = 0;

  beforeAll(async () => {
    echoImage = await ensureImage(engine.dockerHost, "http-echo");
    functions = createFunctions({ databaseUrl: getDb().url, agentTimeoutMs: 30_000, leaseTtlSeconds: 60 });
    ownerToken = await mintUserJwt(await createUser(getDb().sql));

    const agentPort = await freePort();
    const registered = await call(functions.toolboxes, "POST", "/toolboxes", {
      token: ownerToken,
      body: { name: "engine", agent_url: `http://127.0.0.1:${agentPort}` },
    });
    toolboxId = registered.body.toolbox.id;
    await isolatePortRange(getDb().sql, toolboxId);
    agent = await startAgent(agentPort, registered.body.agent_token);
  }, IMAGE_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await agent?.close();
    if (toolboxId !== "") await removeLabeledContainers(engine.docker, `${LABEL_TOOLBOX_ID}=${toolboxId}`);
    await functions?.close();
  });

  async function startAgent(port: number, token: string, extraEnv: Record<string, string> = {}): Promise<RunningAgent> {
    const config = loadConfig({
      DTMA_TOKEN: token,
      DTMA_PORT: String(port),
      DTMA_TOOLBOX_ID: toolboxId,
      DOCKER_HOST: engine.dockerHost,
      DTMA_STOP_TIMEOUT_SECONDS: "2",
      ...extraEnv,
    });
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        agentLogLines.push(chunk.toString("utf8"));
        callback();
      },
    });
    return serveAgent(config, new DockerEngine(config.docker, config.engineTimeoutMs), createAgentLogger("debug", sink));
  }

  async function deploy(body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
    nameCounter += 1;
    return call(functions.instances, "POST", "/instances", {
      token: ownerToken,
      headers,
      body: { toolbox_id: toolboxId, name: `echo-${nameCounter}`, image: echoImage, port: HTTP_ECHO_PORT, ...body },
    });
  }

  async function deployRunning(body: Record<string, unknown> = {}): Promise<InstanceResponse> {
    const deployed = await deploy(body);
    expect(deployed.status, deployed.text).toBe(201);
    return InstanceResponse.parse(deployed.body);
  }

  async function containersOf(instanceId: string): Promise<string[]> {
    const found = await engine.docker.listContainers({ all: true, filters: { label: [`${LABEL_INSTANCE_ID}=${instanceId}`] } });
    return found.map((container) => container.Id);
  }

  async function readEnv(hostPort: number, name: string): Promise<string> {
    const deadline = Date.now() + 20_000;
    let last = "no response";
    while (Date.now() < deadline) {
      try {
        const response = await fetch(`http://127.0.0.1:${hostPort}/env/${name}`, { signal: AbortSignal.timeout(2_000) });
        if (response.ok) return await response.text();
        last = `HTTP ${response.status}`;
      } catch (error) {
        last = String(error);
      }
      await sleep(200);
    }
    throw new Error(`GET /env/${name} on port ${hostPort} failed for 20 s (last: ${last})`);
  }

  test("deploy runs the container", async () => {
    const instance = await deployRunning({ env: { GREETING: "hello from berth" } });

    expect(instance.status).toBe("running");
    expect(instance.status_reason_code).toBe("ContainerRunning");
    expect(instance.docker_state).toBe("running");
    expect(instance.observed_generation).toBe(instance.spec_generation);
    expect(instance.endpoint).toBe(`http://127.0.0.1:${instance.host_port}/mcp`);
    expect(await containersOf(instance.id)).toEqual([instance.container_id]);
    expect(await readEnv(instance.host_port, "GREETING")).toBe("hello from berth");
  });

  test("secret reaches only the container", async () => {
    const secret = `s3cret-${randomUUID()}`;
    const logLinesBefore = functions.logLines.length;

    const deployed = await deploy({ secrets: { API_TOKEN: secret } });

    expect(deployed.status).toBe(201);
    const instance = InstanceResponse.parse(deployed.body);
    expect(instance.secret_names).toEqual(["API_TOKEN"]);
    expect(await readEnv(instance.host_port, "API_TOKEN")).toBe(secret);

    const responses = [
      deployed.text,
      (await call(functions.instances, "GET", `/instances/${instance.id}`, { token: ownerToken })).text,
      (await call(functions.instances, "GET", "/instances", { token: ownerToken })).text,
      (await call(functions.instances, "POST", `/instances/${instance.id}/restart`, { token: ownerToken })).text,
      (await call(functions.instances, "GET", `/instances/${instance.id}/logs`, { token: ownerToken })).text,
    ];
    for (const text of responses) expect(text).not.toContain(secret);
    expect(functions.logLines.length).toBeGreaterThan(logLinesBefore);
    expect(functions.logLines.join("\n")).not.toContain(secret);
    expect(agentLogLines.join("\n")).not.toContain(secret);

    const readable = await asJwt(getDb().sql, ownerToken, async (tx) => ({
      instances: await tx`select * from public.tool_instances`,
      events: await tx`select * from public.instance_events`,
      toolboxes: await tx`select * from public.toolboxes`,
    }));
    expect(readable.instances.map((row) => row.id)).toContain(instance.id);
    expect(JSON.stringify(readable)).not.toContain(secret);
  });

  test("idempotent deploy creates one container", async () => {
    const key = randomUUID();
    nameCounter += 1;
    const body = { toolbox_id: toolboxId, name: `idem-${nameCounter}`, image: echoImage, port: HTTP_ECHO_PORT };
    const send = (requestBody: unknown) =>
      call(functions.instances, "POST", "/instances", { token: ownerToken, body: requestBody, headers: { "idempotency-key": key } });

    const first = await send(body);
    const second = await send(body);
    const reused = await send({ ...body, port: 9090 });

    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.body.id).toBe(first.body.id);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(await containersOf(first.body.id)).toHaveLength(1);
    const [count] = await getDb().sql`select count(*)::int as count from public.tool_instances where name = ${body.name}`;
    expect(count!.count).toBe(1);
    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe("idempotency_key_reused");
  });

  test("start recreates a lost container", async () => {
    const instance = await deployRunning();
    await engine.docker.getContainer(instance.container_id!).remove({ force: true });

    const started = await call(functions.instances, "POST", `/instances/${instance.id}/start`, { token: ownerToken });

    expect(started.status, started.text).toBe(200);
    const after = InstanceResponse.parse(started.body);
    expect(after.status).toBe("running");
    expect(after.status_reason_code).toBe("ContainerRunning");
    expect(after.container_id).not.toBeNull();
    expect(after.container_id).not.toBe(instance.container_id);
    expect(await containersOf(instance.id)).toEqual([after.container_id]);
    expect((await engine.docker.getContainer(after.container_id!).inspect()).State.Running).toBe(true);
    const missing = await getDb().sql`
      select from_status, to_status from public.instance_events where instance_id = ${instance.id} and reason_code = 'ContainerMissing'`;
    expect(missing).toEqual([{ from_status: "starting", to_status: "deploying" }]);
  });

  test("stop and start keep the container", async () => {
    const instance = await deployRunning();

    const stopped = await call(functions.instances, "POST", `/instances/${instance.id}/stop`, { token: ownerToken });
    const started = await call(functions.instances, "POST", `/instances/${instance.id}/start`, { token: ownerToken });

    expect(stopped.status).toBe(200);
    expect(stopped.body.status).toBe("stopped");
    expect(stopped.body.docker_state).toBe("exited");
    expect(started.status).toBe(200);
    expect(started.body.status).toBe("running");
    expect(started.body.container_id).toBe(instance.container_id);
    expect(started.body.spec_generation).toBe(instance.spec_generation);
    expect(await containersOf(instance.id)).toEqual([instance.container_id]);
  });

  test("logs and list", async () => {
    const instance = await deployRunning();

    const logs = await call(functions.instances, "GET", `/instances/${instance.id}/logs?tail=20`, { token: ownerToken });
    const listed = await call(functions.instances, "GET", `/instances?toolbox_id=${toolboxId}`, { token: ownerToken });

    expect(logs.status).toBe(200);
    expect(InstanceLogsResponse.parse(logs.body).container_id).toBe(instance.container_id);
    expect(listed.status).toBe(200);
    expect(InstanceListResponse.parse(listed.body).instances.map((row) => row.id)).toContain(instance.id);
  });

  test("logs hide secret values", async () => {
    // http-echo prints an invalid ECHO_EXIT_CODE before it exits, so the secret reaches stdout.
    const secret = `leaky-${randomUUID()}`;
    const deployed = await deploy({ secrets: { ECHO_EXIT_CODE: secret } });
    const instanceId = deployed.body.id ?? deployed.body.error?.details?.instance?.id;
    expect(typeof instanceId).toBe("string");

    let text = "";
    const deadline = Date.now() + 20_000;
    while (!text.includes("invalid ECHO_EXIT_CODE") && Date.now() < deadline) {
      const logs = await call(functions.instances, "GET", `/instances/${instanceId}/logs?tail=20`, { token: ownerToken });
      text = InstanceLogsResponse.parse(logs.body).lines.map((line) => line.text).join("\n");
      if (!text.includes("invalid ECHO_EXIT_CODE")) await sleep(250);
    }

    expect(text).toContain("invalid ECHO_EXIT_CODE");
    expect(text).toContain("[redacted]");
    expect(text).not.toContain(secret);
  });

  test("delete removes the container", async () => {
    const instance = await deployRunning();

    const removed = await call(functions.instances, "DELETE", `/instances/${instance.id}`, { token: ownerToken });

    expect(removed.status).toBe(200);
    expect(removed.body.status).toBe("removed");
    expect(await containersOf(instance.id)).toEqual([]);
    const [secrets] = await getDb().sql`select count(*)::int as count from berth_private.instance_secrets where instance_id = ${instance.id}`;
    expect(secrets!.count).toBe(0);
    const listed = await call(functions.instances, "GET", "/instances", { token: ownerToken });
    expect(listed.body.instances.map((row: { id: string }) => row.id)).not.toContain(instance.id);
  });

  test("agent heartbeats reach the database", async () => {
    const instance = await deployRunning();
    await getDb().sql`update public.tool_instances set container_id = null, docker_state = null where id = ${instance.id}`;
    const controlPlane = await serveOverHttp(functions.heartbeat);
    const before = await call(functions.toolboxes, "GET", `/toolboxes/${toolboxId}`, { token: ownerToken });
    expect(before.body.status).toBe("provisioning");
    const agentToken = await deriveAgentToken(TEST_AGENT_TOKEN_SECRET, toolboxId, before.body.token_version);
    const heartbeating = await startAgent(await freePort(), agentToken, {
      DTMA_CONTROL_PLANE_URL: `${controlPlane.url}/functions/v1`,
      DTMA_HEARTBEAT_INTERVAL_MS: "200",
    });

    try {
      const toolbox = await waitForRow(
        () => getDb().sql`select status, agent_version, last_heartbeat_at from public.toolboxes where id = ${toolboxId}`,
        (row) => row.status === "active",
      );
      expect(toolbox.agent_version).not.toBeNull();
      const observed = await waitForRow(
        () => getDb().sql`select container_id, docker_state from public.tool_instances where id = ${instance.id}`,
        (row) => row.container_id !== null,
      );
      expect(observed).toEqual({ container_id: instance.container_id, docker_state: "running" });
    } finally {
      await heartbeating.close();
      await controlPlane.close();
    }
  });

  async function waitForRow(query: () => Promise<Record<string, unknown>[]>, accept: (row: Record<string, unknown>) => boolean) {
    const deadline = Date.now() + 15_000;
    let last: Record<string, unknown> | undefined;
    while (Date.now() < deadline) {
      last = (await query())[0];
      if (last !== undefined && accept(last)) return last;
      await sleep(100);
    }
    throw new Error(`row did not reach the expected state within 15 s; last: ${JSON.stringify(last)}`);
  }
});

/** Serves a handler over HTTP on a loopback port, so the real agent can reach it. */
async function serveOverHttp(handler: Handler): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const headers = new Headers();
    for (const [key, value] of Object.entries(request.headers)) {
      if (typeof value === "string") headers.set(key, value);
    }
    const method = request.method ?? "GET";
    const body = method === "GET" || method === "HEAD" ? undefined : Buffer.concat(chunks);
    const result = await handler(new Request(`http://127.0.0.1${request.url ?? "/"}`, { method, headers, body }));
    response.writeHead(result.status, Object.fromEntries(result.headers));
    response.end(Buffer.from(await result.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

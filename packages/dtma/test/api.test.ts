import { randomUUID } from "node:crypto";
import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  ErrorBody,
  InstanceObservation,
  InventoryResponse,
  LogsResponse,
  containerNameFor,
  instanceLabels,
} from "@berth/shared";
import { ensureImage, HTTP_ECHO_PORT } from "../../../stack/images.ts";
import { IMAGE_NODE_PATH } from "../../../stack/images-rootfs.ts";
import { freePort } from "../../../stack/net.ts";
import { createTestRunLabel, describeWithEngine, removeLabeledContainers } from "../../../tests/support/engine.ts";
import { callAgent, startInProcessAgent, toolboxSelector, waitFor, type InProcessAgent } from "./support/agent.ts";

const IMAGE_BUILD_TIMEOUT_MS = 240_000;

describeWithEngine("agent on a real engine", (engine) => {
  const toolboxId = randomUUID();
  const runLabel = createTestRunLabel();
  let echoImage = "";
  let agent: InProcessAgent;

  beforeAll(async () => {
    echoImage = await ensureImage(engine.dockerHost, "http-echo");
    agent = await startInProcessAgent({ DOCKER_HOST: engine.dockerHost, DTMA_TOOLBOX_ID: toolboxId });
  }, IMAGE_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await agent?.close();
    await removeLabeledContainers(engine.docker, toolboxSelector(toolboxId));
    await removeLabeledContainers(engine.docker, runLabel.selector);
  });

  function spec(hostPort: number, overrides: Record<string, unknown> = {}) {
    return {
      generation: 1,
      image: echoImage,
      port: HTTP_ECHO_PORT,
      host_port: hostPort,
      desired_state: "running",
      env: { GREETING: "hello world" },
      ...overrides,
    };
  }

  async function put(id: string, body: unknown, target = agent) {
    return callAgent(target.url, "PUT", `/v1/instances/${id}`, body);
  }

  /** Ids of every container tied to the instance by label or by its derived name. */
  async function instanceContainers(id: string): Promise<string[]> {
    const labelled = await engine.docker.listContainers({ all: true, filters: { label: [`dev.berth.instance-id=${id}`] } });
    const ids = new Set(labelled.map((container) => container.Id));
    try {
      ids.add((await engine.docker.getContainer(containerNameFor(id)).inspect()).Id);
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) {
        throw error;
      }
    }
    return [...ids];
  }

  async function containerState(containerId: string): Promise<string> {
    return (await engine.docker.getContainer(containerId).inspect()).State.Status;
  }

  async function fetchEnv(hostPort: number, name: string): Promise<string> {
    return waitFor(`GET /env/${name} on port ${hostPort}`, async () => {
      const response = await fetch(`http://127.0.0.1:${hostPort}/env/${name}`, { signal: AbortSignal.timeout(2_000) });
      return response.ok ? await response.text() : undefined;
    });
  }

  function errorOf(body: unknown) {
    return ErrorBody.parse(body).error;
  }

  it("put twice keeps the container", async () => {
    const id = randomUUID();
    const hostPort = await freePort();

    const first = await put(id, spec(hostPort));
    expect(first.status).toBe(201);
    const created = InstanceObservation.parse(first.body);
    expect(created.state).toBe("running");
    expect(created.generation).toBe(1);
    expect(created.host_port).toBe(hostPort);
    expect(await fetchEnv(hostPort, "GREETING")).toBe("hello world");

    const second = await put(id, spec(hostPort));
    expect(second.status).toBe(200);
    expect(InstanceObservation.parse(second.body).container_id).toBe(created.container_id);
    expect(await instanceContainers(id)).toEqual([created.container_id]);
  });

  it("higher generation replaces the container", async () => {
    const id = randomUUID();
    const hostPort = await freePort();
    const first = InstanceObservation.parse((await put(id, spec(hostPort))).body);

    const second = await put(id, spec(hostPort, { generation: 2, env: { GREETING: "second generation" } }));
    expect(second.status).toBe(201);
    const replaced = InstanceObservation.parse(second.body);
    expect(replaced.container_id).not.toBe(first.container_id);
    expect(replaced.generation).toBe(2);
    expect(await instanceContainers(id)).toEqual([replaced.container_id]);
    expect(await fetchEnv(hostPort, "GREETING")).toBe("second generation");
  });

  it("adopts a labelled container made behind its back", async () => {
    const id = randomUUID();
    const hostPort = await freePort();
    const portKey = `${HTTP_ECHO_PORT}/tcp`;
    const handMade = await engine.docker.createContainer({
      name: containerNameFor(id),
      Image: echoImage,
      Labels: { ...instanceLabels({ instanceId: id, generation: 1, toolboxId }), ...runLabel.labels },
      ExposedPorts: { [portKey]: {} },
      HostConfig: { PortBindings: { [portKey]: [{ HostIp: "127.0.0.1", HostPort: String(hostPort) }] } },
    });

    const response = await put(id, spec(hostPort));
    expect(response.status).toBe(200);
    const observation = InstanceObservation.parse(response.body);
    expect(observation.container_id).toBe(handMade.id);
    expect(observation.state).toBe("running");
    expect(await instanceContainers(id)).toEqual([handMade.id]);
  });

  it("replaces an unlabelled container with the derived name", async () => {
    const id = randomUUID();
    const hostPort = await freePort();
    const handMade = await engine.docker.createContainer({ name: containerNameFor(id), Image: echoImage, Labels: runLabel.labels });

    const response = await put(id, spec(hostPort));
    expect(response.status).toBe(201);
    const observation = InstanceObservation.parse(response.body);
    expect(observation.container_id).not.toBe(handMade.id);
    expect(await instanceContainers(id)).toEqual([observation.container_id]);
  });

  it("concurrent puts leave one container", async () => {
    const id = randomUUID();
    const hostPort = await freePort();
    const responses = await Promise.all([put(id, spec(hostPort)), put(id, spec(hostPort))]);

    expect(responses.map((response) => response.status).sort()).toEqual([200, 201]);
    const ids = responses.map((response) => InstanceObservation.parse(response.body).container_id);
    expect(ids[0]).toBe(ids[1]);
    expect(await instanceContainers(id)).toEqual([ids[0]]);
  });

  it("puts through two agents leave one container", async () => {
    const other = await startInProcessAgent({ DOCKER_HOST: engine.dockerHost, DTMA_TOOLBOX_ID: toolboxId });
    try {
      const id = randomUUID();
      const hostPort = await freePort();
      const responses = await Promise.all([put(id, spec(hostPort)), put(id, spec(hostPort), other)]);

      for (const response of responses) {
        expect([200, 201]).toContain(response.status);
      }
      const ids = responses.map((response) => InstanceObservation.parse(response.body).container_id);
      expect(ids[0]).toBe(ids[1]);
      expect(await instanceContainers(id)).toEqual([ids[0]]);
    } finally {
      await other.close();
    }
  });

  it("start of unknown instance is 404", async () => {
    const response = await callAgent(agent.url, "POST", `/v1/instances/${randomUUID()}/start`);

    expect(response.status).toBe(404);
    expect(errorOf(response.body).code).toBe("instance_not_found");
  });

  it("delete of unknown instance is 204", async () => {
    const response = await callAgent(agent.url, "DELETE", `/v1/instances/${randomUUID()}`);

    expect(response.status).toBe(204);
  });

  it.each([
    ["missing image", { image: undefined }, "image"],
    ["port 0", { port: 0 }, "port"],
    ["port 70000", { port: 70000 }, "port"],
    ["env value not a string", { env: { GREETING: 42 } }, "env.GREETING"],
    ["env name with space", { env: { "MY VAR": "x" } }, "env.MY VAR"],
  ])("rejects %s", async (_name, overrides, field) => {
    const id = randomUUID();
    const response = await put(id, spec(await freePort(), overrides));

    expect(response.status).toBe(400);
    const error = errorOf(response.body);
    expect(error.code).toBe("invalid_request");
    expect((error.details as { fields: Array<{ field: string }> }).fields.map((issue) => issue.field)).toContain(field);
    expect(await instanceContainers(id)).toEqual([]);
  });

  it("rejects a body over 64 KiB", async () => {
    const id = randomUUID();
    const response = await put(id, spec(await freePort(), { env: { PADDING: "x".repeat(70_000) } }));

    expect(response.status).toBe(413);
    expect(errorOf(response.body).code).toBe("payload_too_large");
    expect(await instanceContainers(id)).toEqual([]);
  });

  it("rejects a bad instance id", async () => {
    const response = await put("berth-../../etc", spec(await freePort()));

    expect(response.status).toBe(400);
    expect((errorOf(response.body).details as { fields: Array<{ field: string }> }).fields).toEqual([
      { field: "id", message: "must be a UUID" },
    ]);
  });

  it("requires the token on every v1 route", async () => {
    const id = randomUUID();
    const routes: Array<[string, string]> = [
      ["GET", "/v1/inventory"],
      ["PUT", `/v1/instances/${id}`],
      ["POST", `/v1/instances/${id}/start`],
      ["POST", `/v1/instances/${id}/stop`],
      ["POST", `/v1/instances/${id}/restart`],
      ["DELETE", `/v1/instances/${id}`],
      ["GET", `/v1/instances/${id}/logs`],
    ];
    for (const [method, route] of routes) {
      const body = method === "PUT" ? spec(await freePort()) : undefined;
      const missing = await callAgent(agent.url, method, route, body, null);
      expect(missing.status, `${method} ${route} without token`).toBe(401);
      expect(errorOf(missing.body).code, `${method} ${route} without token`).toBe("unauthorized");
      const wrong = await callAgent(agent.url, method, route, body, "not-the-agent-token");
      expect(wrong.status, `${method} ${route} with wrong token`).toBe(403);
      expect(errorOf(wrong.body).code, `${method} ${route} with wrong token`).toBe("forbidden");
    }
    expect(await instanceContainers(id)).toEqual([]);

    const health = await callAgent(agent.url, "GET", "/healthz", undefined, null);
    expect(health.status).toBe(200);
  });

  it("missing image keeps the old container running", async () => {
    const id = randomUUID();
    const hostPort = await freePort();
    const first = InstanceObservation.parse((await put(id, spec(hostPort))).body);

    const response = await put(id, spec(hostPort, { generation: 2, image: "localhost/berth/not-built-anywhere:1" }));
    expect(response.status).toBe(404);
    expect(errorOf(response.body).code).toBe("image_not_found");
    expect(await containerState(first.container_id)).toBe("running");
    expect(await instanceContainers(id)).toEqual([first.container_id]);
  });

  it("busy host port is port_in_use", async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const busyPort = (holder.address() as net.AddressInfo).port;
    try {
      const response = await put(randomUUID(), spec(busyPort));

      expect(response.status).toBe(409);
      const error = errorOf(response.body);
      expect(error.code).toBe("port_in_use");
      expect(error.details).toEqual({ port: busyPort });
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });

  it("stops, starts and restarts", async () => {
    const id = randomUUID();
    const hostPort = await freePort();
    await put(id, spec(hostPort));
    await fetchEnv(hostPort, "GREETING");

    const stopped = await callAgent(agent.url, "POST", `/v1/instances/${id}/stop`);
    expect(stopped.status).toBe(200);
    const stoppedObservation = InstanceObservation.parse(stopped.body);
    expect(stoppedObservation.state).toBe("exited");
    expect(stoppedObservation.exit_code).toBe(143);
    expect(stoppedObservation.finished_at).not.toBeNull();

    const stoppedAgain = await callAgent(agent.url, "POST", `/v1/instances/${id}/stop`);
    expect(stoppedAgain.status).toBe(200);

    const started = await callAgent(agent.url, "POST", `/v1/instances/${id}/start`);
    expect(InstanceObservation.parse(started.body).state).toBe("running");
    expect(await fetchEnv(hostPort, "GREETING")).toBe("hello world");

    const startedAgain = await callAgent(agent.url, "POST", `/v1/instances/${id}/start`);
    expect(startedAgain.status).toBe(200);

    const restarted = await callAgent(agent.url, "POST", `/v1/instances/${id}/restart`);
    expect(restarted.status).toBe(200);
    const restartedObservation = InstanceObservation.parse(restarted.body);
    expect(restartedObservation.state).toBe("running");
    expect(restartedObservation.container_id).toBe(stoppedObservation.container_id);
  });

  it("container carries the spec", async () => {
    const id = randomUUID();
    const hostPort = await freePort();
    const response = await put(id, spec(hostPort, { memory_mb: 128, cpus: 0.5, command: [IMAGE_NODE_PATH, "/app/server.mjs"] }));
    const info = await engine.docker.getContainer(InstanceObservation.parse(response.body).container_id).inspect();

    expect(info.Name.replace(/^\//, "")).toBe(containerNameFor(id));
    expect(info.Config.Labels).toMatchObject(instanceLabels({ instanceId: id, generation: 1, toolboxId }));
    expect(info.Config.Cmd).toEqual([IMAGE_NODE_PATH, "/app/server.mjs"]);
    expect(info.Config.Env).toContain("GREETING=hello world");
    expect(info.HostConfig.RestartPolicy?.Name).toBe("unless-stopped");
    expect(info.HostConfig.Memory).toBe(128 * 1024 * 1024);
    expect(info.HostConfig.NanoCpus).toBe(500_000_000);
    expect(info.HostConfig.PortBindings).toEqual({ [`${HTTP_ECHO_PORT}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: String(hostPort) }] });
  });

  it("stopped container stays stopped", async () => {
    const id = randomUUID();
    await put(id, spec(await freePort()));
    const stopped = InstanceObservation.parse((await callAgent(agent.url, "POST", `/v1/instances/${id}/stop`)).body);

    // The restart policy would bring a crashed container back within a second; a stop must hold.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await containerState(stopped.container_id)).toBe("exited");
  });

  it("desired stopped creates without starting", async () => {
    const id = randomUUID();
    const hostPort = await freePort();
    const created = await put(id, spec(hostPort, { desired_state: "stopped" }));

    expect(created.status).toBe(201);
    expect(InstanceObservation.parse(created.body).state).toBe("created");
    const running = await put(id, spec(hostPort));
    expect(InstanceObservation.parse(running.body).state).toBe("running");
    const stopped = await put(id, spec(hostPort, { desired_state: "stopped" }));
    expect(InstanceObservation.parse(stopped.body).state).toBe("exited");
  });

  it("logs separate stdout and stderr", async () => {
    const id = randomUUID();
    const script = "console.log('line to stdout'); console.error('line to stderr'); setInterval(() => {}, 1000);";
    await put(id, spec(await freePort(), { command: [IMAGE_NODE_PATH, "-e", script] }));

    const logs = await waitFor("both log lines", async () => {
      const response = await callAgent(agent.url, "GET", `/v1/instances/${id}/logs?tail=20`);
      const parsed = LogsResponse.parse(response.body);
      return parsed.lines.length >= 2 ? parsed : undefined;
    });
    expect(logs.lines).toContainEqual(expect.objectContaining({ stream: "stdout", text: "line to stdout" }));
    expect(logs.lines).toContainEqual(expect.objectContaining({ stream: "stderr", text: "line to stderr" }));
    expect(logs.lines.every((line) => line.time !== null)).toBe(true);

    const tail = await callAgent(agent.url, "GET", `/v1/instances/${id}/logs?tail=1`);
    expect(LogsResponse.parse(tail.body).lines).toHaveLength(1);
  });

  it("inventory lists this toolbox's instances", async () => {
    const id = randomUUID();
    const hostPort = await freePort();
    const created = InstanceObservation.parse((await put(id, spec(hostPort))).body);

    const response = await callAgent(agent.url, "GET", "/v1/inventory");
    const inventory = InventoryResponse.parse(response.body);
    expect(inventory.agent_version).toMatch(/^\d+\.\d+\.\d+/);
    expect(inventory.engine_version).not.toBe("");
    const listed = inventory.instances.find((instance) => instance.instance_id === id);
    expect(listed?.container_id).toBe(created.container_id);
    expect(listed?.host_port).toBe(hostPort);
    expect(listed?.generation).toBe(1);
  });

  it("delete removes the container", async () => {
    const id = randomUUID();
    await put(id, spec(await freePort()));

    const response = await callAgent(agent.url, "DELETE", `/v1/instances/${id}`);
    expect(response.status).toBe(204);
    expect(await instanceContainers(id)).toEqual([]);
    const start = await callAgent(agent.url, "POST", `/v1/instances/${id}/start`);
    expect(start.status).toBe(404);
  });
});

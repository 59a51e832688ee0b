import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { HeartbeatRequest, InstanceObservation, type ContainerEventAction } from "@berth/shared";
import { ensureImage, HTTP_ECHO_PORT } from "../../../stack/images.ts";
import { freePort } from "../../../stack/net.ts";
import { describeWithEngine, removeLabeledContainers } from "../../../tests/support/engine.ts";
import type { Engine } from "../src/engine/engine.ts";
import { TEST_TOKEN, callAgent, startInProcessAgent, toolboxSelector, waitFor, type InProcessAgent } from "./support/agent.ts";

const IMAGE_BUILD_TIMEOUT_MS = 240_000;

interface Received {
  at: number;
  authorization: string | undefined;
  body: HeartbeatRequest;
}

/** Starts a stand-in control plane on loopback that records heartbeats and responds with `status`. */
async function startControlPlane() {
  const received: Received[] = [];
  const state = { status: 200 };
  const server = http.createServer((request, response) => {
    let text = "";
    request.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
    request.on("end", () => {
      if (request.method === "POST" && request.url === "/functions/v1/dtma-heartbeat") {
        received.push({ at: Date.now(), authorization: request.headers.authorization, body: HeartbeatRequest.parse(JSON.parse(text)) });
      }
      response.writeHead(state.status, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/functions/v1`;
  return { url, received, state, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/**
 * Waits until the heartbeats received from index `from` on carry each of `actions` for the
 * container, and returns those heartbeats.
 */
async function waitForEvents(received: Received[], from: number, containerId: string, actions: ContainerEventAction[]): Promise<Received[]> {
  return waitFor(`heartbeats with the events ${actions.join(", ")} of container ${containerId}`, async () => {
    const heartbeats = received.slice(from);
    const seen = new Set(
      heartbeats.flatMap((heartbeat) => heartbeat.body.events.filter((event) => event.container_id === containerId).map((event) => event.action)),
    );
    return actions.every((action) => seen.has(action)) ? heartbeats : undefined;
  });
}

describeWithEngine("agent heartbeats", (engine) => {
  const toolboxId = randomUUID();
  let echoImage = "";
  let controlPlane: Awaited<ReturnType<typeof startControlPlane>>;
  let agent: InProcessAgent;

  beforeAll(async () => {
    echoImage = await ensureImage(engine.dockerHost, "http-echo");
    controlPlane = await startControlPlane();
    agent = await startInProcessAgent({
      DOCKER_HOST: engine.dockerHost,
      DTMA_TOOLBOX_ID: toolboxId,
      DTMA_CONTROL_PLANE_URL: controlPlane.url,
      DTMA_HEARTBEAT_INTERVAL_MS: "600000",
      DTMA_HEARTBEAT_DEBOUNCE_MS: "200",
      DTMA_HEARTBEAT_BACKOFF_MIN_MS: "100",
      DTMA_HEARTBEAT_BACKOFF_MAX_MS: "400",
    });
  }, IMAGE_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await agent?.close();
    await controlPlane?.close();
    await removeLabeledContainers(engine.docker, toolboxSelector(toolboxId));
  });

  it("sends one at start", async () => {
    const first = await waitFor("the first heartbeat", async () => controlPlane.received[0]);

    expect(first.authorization).toBe(`Bearer ${TEST_TOKEN}`);
    expect(first.body.toolbox_id).toBe(toolboxId);
    expect(first.body.engine_version).not.toBe("");
  });

  it("sends one after a container event", async () => {
    const receivedBefore = controlPlane.received.length;
    const id = randomUUID();
    const deployed = await callAgent(agent.url, "PUT", `/v1/instances/${id}`, {
      generation: 1,
      image: echoImage,
      port: HTTP_ECHO_PORT,
      host_port: await freePort(),
      desired_state: "running",
    });
    const containerId = InstanceObservation.parse(deployed.body).container_id;
    await callAgent(agent.url, "POST", `/v1/instances/${id}/stop`);

    // The start and the die event may arrive in one heartbeat or in two, depending on how long
    // the stop takes compared with the debounce delay.
    const heartbeats = await waitForEvents(controlPlane.received, receivedBefore, containerId, ["start", "die"]);
    const events = heartbeats.flatMap((heartbeat) => heartbeat.body.events);
    const die = events.find((event) => event.action === "die" && event.container_id === containerId);
    expect(die?.instance_id).toBe(id);
    expect(die?.exit_code).toBe(143);
    expect(events.every((event) => event.instance_id === id)).toBe(true);

    const withDie = heartbeats.find((heartbeat) => heartbeat.body.events.includes(die!));
    expect(withDie?.body.instances.map((instance) => instance.container_id)).toContain(containerId);
  });

  it("backs off while the control plane fails", async () => {
    controlPlane.state.status = 500;
    const failingSince = controlPlane.received.length;
    const id = randomUUID();
    await callAgent(agent.url, "PUT", `/v1/instances/${id}`, {
      generation: 1,
      image: echoImage,
      port: HTTP_ECHO_PORT,
      host_port: await freePort(),
      desired_state: "running",
    });

    const attempts = await waitFor("six failed heartbeats", async () => {
      const failed = controlPlane.received.slice(failingSince);
      return failed.length >= 6 ? failed : undefined;
    });
    // Delays double from 100 ms and stop at 400 ms; without the cap the fifth would be 1600 ms.
    // The cap is read from the agent's log, because a gap between two attempts also contains
    // the next attempt's own work, which takes longer than a second on a loaded machine.
    const retryDelays = agent
      .logLines()
      .map((line) => JSON.parse(line) as { msg: string; retry_in_ms?: number })
      .filter((entry) => entry.msg === "heartbeat failed")
      .map((entry) => entry.retry_in_ms);
    expect(retryDelays.slice(0, 5)).toEqual([100, 200, 400, 400, 400]);

    // The measured gaps show that each attempt waited for its delay.
    const gaps = attempts.slice(1, 6).map((attempt, index) => attempt.at - attempts[index]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(90);
    expect(gaps[1]).toBeGreaterThanOrEqual(190);
    expect(gaps[2]).toBeGreaterThanOrEqual(390);
    expect(gaps[3]).toBeGreaterThanOrEqual(390);
    expect(gaps[4]).toBeGreaterThanOrEqual(390);

    controlPlane.state.status = 200;
    const delivered = await waitFor("a heartbeat after recovery with the queued start event", async () =>
      controlPlane.received
        .slice(failingSince + 6)
        .find((heartbeat) => heartbeat.body.events.some((event) => event.action === "start" && event.instance_id === id)),
    );
    expect(delivered.body.instances.map((instance) => instance.instance_id)).toContain(id);
  });
});

describeWithEngine("agent heartbeats before the event stream opens", (engine) => {
  const toolboxId = randomUUID();
  let echoImage = "";
  let controlPlane: Awaited<ReturnType<typeof startControlPlane>>;
  let agent: InProcessAgent;
  let openEventStream: () => void = () => {};

  beforeAll(async () => {
    echoImage = await ensureImage(engine.dockerHost, "http-echo");
    controlPlane = await startControlPlane();
    const streamGate = new Promise<void>((resolve) => (openEventStream = resolve));
    // The agent's event stream opens only when the test calls openEventStream, as on an engine
    // that is slow to respond to the events request.
    const wrapEngine = (inner: Engine): Engine =>
      Object.assign(Object.create(inner) as Engine, {
        events: async (...args: Parameters<Engine["events"]>) => {
          await streamGate;
          return inner.events(...args);
        },
      });
    agent = await startInProcessAgent(
      { DOCKER_HOST: engine.dockerHost, DTMA_TOOLBOX_ID: toolboxId, DTMA_CONTROL_PLANE_URL: controlPlane.url, DTMA_HEARTBEAT_DEBOUNCE_MS: "200" },
      { wrapEngine },
    );
  }, IMAGE_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    openEventStream();
    await agent?.close();
    await controlPlane?.close();
    await removeLabeledContainers(engine.docker, toolboxSelector(toolboxId));
  });

  it("reports a start from before the stream opened", async () => {
    const id = randomUUID();
    const deployed = await callAgent(agent.url, "PUT", `/v1/instances/${id}`, {
      generation: 1,
      image: echoImage,
      port: HTTP_ECHO_PORT,
      host_port: await freePort(),
      desired_state: "running",
    });
    expect(deployed.status).toBe(201);
    const containerId = InstanceObservation.parse(deployed.body).container_id;

    openEventStream();
    const heartbeats = await waitForEvents(controlPlane.received, 0, containerId, ["start"]);
    const start = heartbeats.flatMap((heartbeat) => heartbeat.body.events).find((event) => event.action === "start");
    expect(start?.instance_id).toBe(id);
  });
});

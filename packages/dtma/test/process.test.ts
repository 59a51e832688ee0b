import { randomUUID } from "node:crypto";
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorBody, InstanceObservation, InventoryResponse, LogsResponse } from "@berth/shared";
import { ensureImage, HTTP_ECHO_PORT } from "../../../stack/images.ts";
import { freePort } from "../../../stack/net.ts";
import { REPO_ROOT } from "../../../stack/paths.ts";
import { describeWithEngine, removeLabeledContainers } from "../../../tests/support/engine.ts";
import { AGENT_BIN, callAgent, spawnAgent, stopAgent, toolboxSelector, waitFor, type AgentProcess } from "./support/agent.ts";

const IMAGE_BUILD_TIMEOUT_MS = 240_000;

describeWithEngine("agent process", (engine) => {
  const toolboxId = randomUUID();
  const agents: AgentProcess[] = [];
  let echoImage = "";

  beforeAll(async () => {
    echoImage = await ensureImage(engine.dockerHost, "http-echo");
  }, IMAGE_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    for (const agent of agents) {
      await stopAgent(agent, "SIGKILL");
    }
    await removeLabeledContainers(engine.docker, toolboxSelector(toolboxId));
  });

  async function start(env: Record<string, string> = {}): Promise<AgentProcess> {
    const agent = await spawnAgent({ DOCKER_HOST: engine.dockerHost, DTMA_TOOLBOX_ID: toolboxId, ...env });
    agents.push(agent);
    return agent;
  }

  function spec(hostPort: number) {
    return { generation: 1, image: echoImage, port: HTTP_ECHO_PORT, host_port: hostPort, desired_state: "running" };
  }

  async function isRunning(containerId: string): Promise<boolean> {
    return (await engine.docker.getContainer(containerId).inspect()).State.Running;
  }

  it("killed agent's successor manages the same container", async () => {
    const first = await start();
    const id = randomUUID();
    const deployed = await callAgent(first.url, "PUT", `/v1/instances/${id}`, spec(await freePort()));
    expect(deployed.status).toBe(201);
    const containerId = InstanceObservation.parse(deployed.body).container_id;

    expect(await stopAgent(first, "SIGKILL")).toBe("SIGKILL");
    expect(await isRunning(containerId)).toBe(true);
    const second = await start();

    const inventory = InventoryResponse.parse((await callAgent(second.url, "GET", "/v1/inventory")).body);
    expect(inventory.instances.map((instance) => instance.container_id)).toContain(containerId);
    for (const action of ["stop", "start", "restart"]) {
      const response = await callAgent(second.url, "POST", `/v1/instances/${id}/${action}`);
      expect(response.status, `${action} after agent restart`).toBe(200);
      expect(InstanceObservation.parse(response.body).container_id, action).toBe(containerId);
    }
    const logs = await callAgent(second.url, "GET", `/v1/instances/${id}/logs?tail=10`);
    expect(logs.status).toBe(200);
    expect(LogsResponse.parse(logs.body).container_id).toBe(containerId);
    const again = await callAgent(second.url, "PUT", `/v1/instances/${id}`, spec(InstanceObservation.parse(deployed.body).host_port!));
    expect(again.status).toBe(200);
    expect(InstanceObservation.parse(again.body).container_id).toBe(containerId);
    expect((await callAgent(second.url, "DELETE", `/v1/instances/${id}`)).status).toBe(204);
  });

  it("SIGTERM exits 0 and leaves containers running", async () => {
    // Heartbeats to a loopback port where nothing listens, so the event watcher and the
    // retrying heartbeat sender are running when the signal arrives.
    const agent = await start({ DTMA_CONTROL_PLANE_URL: `http://127.0.0.1:${await freePort()}` });
    const id = randomUUID();
    const inFlight = callAgent(agent.url, "PUT", `/v1/instances/${id}`, spec(await freePort()));
    await waitFor("the agent to log the new container", async () => (agent.stdout().includes('"created container"') ? true : undefined));

    process.kill(agent.child.pid!, "SIGTERM");
    const response = await inFlight;
    expect(response.status).toBe(201);
    expect(await agent.exited).toBe(0);
    expect(await isRunning(InstanceObservation.parse(response.body).container_id)).toBe(true);
    expect(agent.stdout()).toContain('"agent stopped; managed containers keep running"');
    await expect(fetch(`${agent.url}/healthz`)).rejects.toThrow();
  });

  it("logs contain no token or env value", async () => {
    const agent = await start();
    const secret = `secret-${randomUUID()}`;
    const response = await callAgent(agent.url, "PUT", `/v1/instances/${randomUUID()}`, {
      ...spec(await freePort()),
      env: { API_KEY: secret },
    });
    expect(response.status).toBe(201);
    await callAgent(agent.url, "GET", "/v1/inventory", undefined, "wrong-token-value");
    await stopAgent(agent, "SIGTERM");

    const output = agent.stdout() + agent.stderr();
    expect(output).toContain('"request completed"');
    expect(output).not.toContain(secret);
    expect(output).not.toContain("wrong-token-value");
    expect(output).not.toMatch(/dtma-test-token-/);
  });
});

describe("agent startup", () => {
  function run(command: string, args: string[], env: Record<string, string>) {
    const child = spawn(command, args, {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
    return { exited, stderr: () => stderr };
  }

  it("missing DTMA_TOKEN exits non-zero", async () => {
    const agent = run("npx", ["berth-dtma"], {});

    const code = await agent.exited;
    expect(code).not.toBe(0);
    expect(agent.stderr()).toContain("DTMA_TOKEN");
  });

  it("invalid DTMA_PORT exits non-zero", async () => {
    const agent = run(process.execPath, [AGENT_BIN], { DTMA_TOKEN: "a-valid-token-0123456789", DTMA_PORT: "99999" });

    expect(await agent.exited).not.toBe(0);
    expect(agent.stderr()).toContain("DTMA_PORT");
  });

  it("npx berth-dtma serves healthz", async () => {
    const agent = await spawnAgent({ HOME: process.env.HOME ?? "/root", DOCKER_HOST: "unix:///nonexistent/dtma-test.sock" }, { command: ["npx", "berth-dtma"] });
    try {
      const response = await callAgent(agent.url, "GET", "/healthz", undefined, null);
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: "ok" });
    } finally {
      // npm does not forward SIGTERM, but a signal to the whole process group reaches the agent.
      expect(await stopAgent(agent, "SIGTERM")).not.toBe("unknown");
    }
    await waitFor("the agent under npx to stop", async () => (agent.stdout().includes('"agent stopped; managed containers keep running"') ? true : undefined));
  });

  it("unreachable engine is 503", async () => {
    const agent = await spawnAgent({ DOCKER_HOST: "unix:///nonexistent/dtma-test.sock" });
    try {
      for (const [method, route] of [
        ["GET", "/v1/inventory"],
        ["PUT", `/v1/instances/${randomUUID()}`],
        ["POST", `/v1/instances/${randomUUID()}/start`],
      ] as const) {
        const body = method === "PUT" ? { generation: 1, image: "localhost/x:1", port: 80, host_port: 41999, desired_state: "running" } : undefined;
        const response = await callAgent(agent.url, method, route, body);
        expect(response.status, `${method} ${route}`).toBe(503);
        expect(ErrorBody.parse(response.body).error.code, `${method} ${route}`).toBe("engine_unavailable");
      }
      const health = await callAgent(agent.url, "GET", "/healthz", undefined, null);
      expect(health.status).toBe(200);
    } finally {
      await stopAgent(agent, "SIGKILL");
    }
  });
});

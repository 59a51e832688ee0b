import { randomUUID } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { InstanceObservation } from "@berth/shared";
import { ensureImage, MCP_EVERYTHING_PATH, MCP_EVERYTHING_PORT } from "../../../stack/images.ts";
import { freePort } from "../../../stack/net.ts";
import { describeWithEngine, removeLabeledContainers } from "../../../tests/support/engine.ts";
import { callAgent, startInProcessAgent, toolboxSelector, waitFor, type InProcessAgent } from "./support/agent.ts";

const IMAGE_BUILD_TIMEOUT_MS = 240_000;

describeWithEngine("MCP server deployed by the agent", (engine) => {
  const toolboxId = randomUUID();
  let mcpImage = "";
  let agent: InProcessAgent;

  beforeAll(async () => {
    mcpImage = await ensureImage(engine.dockerHost, "mcp-everything");
    agent = await startInProcessAgent({ DOCKER_HOST: engine.dockerHost, DTMA_TOOLBOX_ID: toolboxId });
  }, IMAGE_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await agent?.close();
    await removeLabeledContainers(engine.docker, toolboxSelector(toolboxId));
  });

  it("answers initialize and tools/list", async () => {
    const hostPort = await freePort();
    const response = await callAgent(agent.url, "PUT", `/v1/instances/${randomUUID()}`, {
      generation: 1,
      image: mcpImage,
      port: MCP_EVERYTHING_PORT,
      host_port: hostPort,
      desired_state: "running",
      memory_mb: 256,
      cpus: 1,
    });
    expect(response.status).toBe(201);
    expect(InstanceObservation.parse(response.body).state).toBe("running");

    const endpoint = new URL(`http://127.0.0.1:${hostPort}${MCP_EVERYTHING_PATH}`);
    // A GET without a session returns 4xx as soon as the server listens.
    await waitFor(`MCP endpoint ${endpoint.href} to listen`, async () => {
      const probe = await fetch(endpoint, { signal: AbortSignal.timeout(2_000) });
      await probe.body?.cancel();
      return probe.status < 500 ? true : undefined;
    }, 30_000);

    const client = new Client({ name: "berth-dtma-test", version: "0.0.0" });
    try {
      await client.connect(new StreamableHTTPClientTransport(endpoint));
      expect(client.getServerVersion()?.name).toBe("mcp-servers/everything");
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name)).toContain("echo");
    } finally {
      await client.close();
    }
  });
});

import type Docker from "dockerode";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureImage, HTTP_ECHO_PORT, MCP_EVERYTHING_PATH, MCP_EVERYTHING_PORT } from "../../stack/images.ts";
import { freePort } from "../../stack/net.ts";
import {
  containerLogs,
  createTestRunLabel,
  describeWithEngine,
  removeLabeledContainers,
  waitForContainerHttp,
  waitForContainerStatus,
  type TestEngine,
} from "../support/engine.ts";

const IMAGE_BUILD_TIMEOUT_MS = 240_000;
/** Maximum duration of `docker stop`. It is far below the 10 s stop timeout, so an ignored SIGTERM fails. */
const FAST_STOP_MS = 5_000;

describeWithEngine("container engine", (engine) => {
  const runLabel = createTestRunLabel();
  let echoImage = "";
  let mcpImage = "";

  beforeAll(async () => {
    echoImage = await ensureImage(engine.dockerHost, "http-echo");
    mcpImage = await ensureImage(engine.dockerHost, "mcp-everything");
  }, IMAGE_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await removeLabeledContainers(engine.docker, runLabel.selector);
    const left = await engine.docker.listContainers({ all: true, filters: { label: [runLabel.selector] } });
    expect(left).toEqual([]);
  });

  it("http-echo answers on a published port", async () => {
    const hostPort = await freePort();
    const container = await createContainer(engine, echoImage, HTTP_ECHO_PORT, hostPort, ["ECHO_SECRET=s3cret-value"]);
    try {
      await container.start();
      const response = await waitForContainerHttp(container, `http://127.0.0.1:${hostPort}/`);
      const body = (await response.json()) as { service: string; envNames: string[] };
      expect(body.service).toBe("http-echo");
      expect(body.envNames).toContain("ECHO_SECRET");

      const value = await fetch(`http://127.0.0.1:${hostPort}/env/ECHO_SECRET`);
      expect(value.status).toBe(200);
      expect(await value.text()).toBe("s3cret-value");

      const missing = await fetch(`http://127.0.0.1:${hostPort}/env/NOT_SET_ANYWHERE`);
      expect(missing.status).toBe(404);
      expect(await containerLogs(container)).toContain('"path":"/env/ECHO_SECRET"');
    } finally {
      await container.remove({ force: true });
    }
  });

  it("http-echo exits with ECHO_EXIT_CODE", async () => {
    const container = await createContainer(engine, echoImage, HTTP_ECHO_PORT, await freePort(), ["ECHO_EXIT_CODE=3"]);
    try {
      await container.start();
      const info = await waitForContainerStatus(container, "exited");
      expect(info.State.ExitCode).toBe(3);
      expect(await containerLogs(container)).toContain("exiting with code 3");
    } finally {
      await container.remove({ force: true });
    }
  });

  it("http-echo stops at once on SIGTERM", async () => {
    const hostPort = await freePort();
    const container = await createContainer(engine, echoImage, HTTP_ECHO_PORT, hostPort);
    try {
      await container.start();
      await waitForContainerHttp(container, `http://127.0.0.1:${hostPort}/`);

      const started = Date.now();
      await container.stop({ t: 10 });
      expect(Date.now() - started).toBeLessThan(FAST_STOP_MS);
      expect((await container.inspect()).State.ExitCode).toBe(143);
    } finally {
      await container.remove({ force: true });
    }
  });

  it("mcp-everything serves initialize and tools/list", async () => {
    const hostPort = await freePort();
    const container = await createContainer(engine, mcpImage, MCP_EVERYTHING_PORT, hostPort);
    const client = new Client({ name: "berth-engine-test", version: "0.0.0" });
    try {
      await container.start();
      const endpoint = `http://127.0.0.1:${hostPort}${MCP_EVERYTHING_PATH}`;
      // GET without a session gets 400 once the server listens, which is all this wait needs.
      await waitForContainerHttp(container, endpoint, { accept: (response) => response.status < 500 });

      await client.connect(new StreamableHTTPClientTransport(new URL(endpoint)));
      expect(client.getServerVersion()?.name).toBe("mcp-servers/everything");

      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name)).toContain("echo");
    } finally {
      await client.close();
      await container.remove({ force: true });
    }
  });

  it("mcp-everything stops at once on SIGTERM", async () => {
    const hostPort = await freePort();
    const container = await createContainer(engine, mcpImage, MCP_EVERYTHING_PORT, hostPort);
    try {
      await container.start();
      const endpoint = `http://127.0.0.1:${hostPort}${MCP_EVERYTHING_PATH}`;
      await waitForContainerHttp(container, endpoint, { accept: (response) => response.status < 500 });

      const started = Date.now();
      await container.stop({ t: 10 });
      expect(Date.now() - started).toBeLessThan(FAST_STOP_MS);
      expect((await container.inspect()).State.ExitCode).toBe(143);
    } finally {
      await container.remove({ force: true });
    }
  });

  it("label cleanup removes only its own label", async () => {
    const otherLabel = createTestRunLabel();
    const ours = await createContainer(engine, echoImage, HTTP_ECHO_PORT, await freePort());
    const theirs = await engine.docker.createContainer({ Image: echoImage, Labels: otherLabel.labels });
    try {
      const removed = await removeLabeledContainers(engine.docker, runLabel.selector);
      expect(removed).toBe(1);
      await expect(ours.inspect()).rejects.toMatchObject({ statusCode: 404 });
      expect((await theirs.inspect()).Config.Labels).toEqual(otherLabel.labels);
    } finally {
      await removeLabeledContainers(engine.docker, otherLabel.selector);
    }
  });

  /** Creates a container of this suite, with containerPort published on 127.0.0.1:hostPort. */
  function createContainer(
    { docker }: TestEngine,
    image: string,
    containerPort: number,
    hostPort: number,
    env: string[] = [],
  ): Promise<Docker.Container> {
    const port = `${containerPort}/tcp`;
    return docker.createContainer({
      Image: image,
      Env: env,
      Labels: runLabel.labels,
      ExposedPorts: { [port]: {} },
      HostConfig: { PortBindings: { [port]: [{ HostIp: "127.0.0.1", HostPort: String(hostPort) }] } },
    });
  }
});

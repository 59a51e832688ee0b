// Which agent URLs the functions accept and call. Without BERTH_ALLOW_PRIVATE_AGENT_URLS the
// functions neither register nor call loopback, private, link-local, unspecified or multicast
// addresses, and agent errors that do not follow the contract are not echoed to the caller.
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { nonPublicRange } from "../../supabase/functions/_shared/agent-address.ts";
import { createAgentClientFactory } from "../../supabase/functions/_shared/agents.ts";
import { AgentCallError, createDtmaClient } from "../../supabase/functions/_shared/dtma-client.ts";
import { mintUserJwt } from "../../stack/jwt.ts";
import { freePort } from "../../stack/net.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { startFakeAgent, type FakeAgent } from "./support/fake-agent.ts";
import { call, countWrites, createFunctions, TEST_AGENT_TOKEN_SECRET, type FunctionsUnderTest } from "./support/functions.ts";

const getDb = useTestDatabase();

const LEAKED = "INTERNAL-SECRET-DATA";
const INSTANCE_ID = "7d1c4f5e-2b9a-4c3d-8e6f-0a1b2c3d4e5f";

/** Starts an HTTP server on loopback that responds to every request with `reply` and counts requests. */
async function startServer(reply: (response: http.ServerResponse) => void): Promise<{ url: string; port: number; requests: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server = http.createServer((_request, response) => {
    count += 1;
    reply(response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Starts a TCP server that sends a line that is not HTTP and closes, like an SSH or SMTP port. */
async function startNonHttpServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.end("SSH-2.0-OpenSSH_9.2\r\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function failureOf(promise: Promise<unknown>): Promise<AgentCallError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(AgentCallError);
  return error as AgentCallError;
}

describe("address ranges", () => {
  test.each([
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "link-local"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["::1", "loopback"],
    ["::", "unspecified"],
    ["fe80::1", "link-local"],
    ["febf::1", "link-local"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["ff02::1", "multicast"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:a9fe:a9fe", "link-local"],
    ["fe80::1%eth0", "link-local"],
  ])("%s is %s", (address, range) => {
    expect(nonPublicRange(address)).toBe(range);
  });

  test.each(["203.0.113.7", "8.8.8.8", "172.32.0.1", "172.15.255.255", "192.169.0.1", "2001:db8::1", "2606:4700::1111", "::ffff:203.0.113.7"])(
    "%s is public",
    (address) => {
      expect(nonPublicRange(address)).toBeNull();
    },
  );
});

describe("agent_url at registration", () => {
  let strict: FunctionsUnderTest;
  let open: FunctionsUnderTest;
  let token: string;
  let nameCounter = 0;

  beforeAll(async () => {
    strict = createFunctions({ databaseUrl: getDb().url, allowPrivateAgentUrls: false });
    open = createFunctions({ databaseUrl: getDb().url, allowPrivateAgentUrls: true });
    token = await mintUserJwt(await createUser(getDb().sql));
  });

  afterAll(async () => {
    await strict?.close();
    await open?.close();
  });

  async function register(functions: FunctionsUnderTest, agentUrl: string) {
    nameCounter += 1;
    return call(functions.toolboxes, "POST", "/toolboxes", { token, body: { name: `url-${nameCounter}`, agent_url: agentUrl } });
  }

  async function expectRejected(functions: FunctionsUnderTest, agentUrl: string) {
    const before = await countWrites(getDb().sql);

    const response = await register(functions, agentUrl);

    expect(response.status, agentUrl).toBe(400);
    expect(response.body.error.code, agentUrl).toBe("invalid_request");
    expect(response.body.error.details.fields.map((issue: { field: string }) => issue.field), agentUrl).toEqual(["agent_url"]);
    expect(await countWrites(getDb().sql)).toEqual(before);
    return response;
  }

  test.each([
    "http://127.0.0.1:30000",
    "http://0x7f000001:9",
    "http://2130706433:9",
    "http://127.1:9",
    "http://localhost:30000",
    "http://agent.localhost:30000",
    "http://10.0.0.5:30000",
    "http://172.16.4.2:30000",
    "http://192.168.0.10:30000",
    "http://169.254.169.254:80",
    "http://0.0.0.0:30000",
    "http://224.0.0.1:30000",
    "http://[::1]:30000",
    "http://[::]:30000",
    "http://[fe80::1]:30000",
    "http://[fc00::1]:30000",
    "http://[::ffff:127.0.0.1]:30000",
  ])("non-public %s is rejected", async (agentUrl) => {
    const response = await expectRejected(strict, agentUrl);

    expect(response.body.error.message).toContain("BERTH_ALLOW_PRIVATE_AGENT_URLS");
  });

  test.each([
    "http://user:pass@203.0.113.7:30000",
    "http://user@203.0.113.7:30000",
    "http://203.0.113.7:30000/prefix",
    "http://203.0.113.7:30000/v1/",
    "http://203.0.113.7:30000/?",
    "http://203.0.113.7:30000#top",
    "http://203.0.113.7:30000\\",
    "ftp://203.0.113.7:30000",
    "http://203.0.113.7:0",
    "http://127.0.0.1:99999",
    "http://[zz]:1",
    "http://%zz:1",
    "http://127.0.0.1:9/\u0000",
    "http://127.0.0.1:9\u0000",
    "http://127.0.0.1:9\t",
  ])("malformed %j is rejected even when private addresses are allowed", async (agentUrl) => {
    await expectRejected(open, agentUrl);
  });

  test("path prefix is named in the message", async () => {
    const response = await expectRejected(open, "https://203.0.113.7:30000/agent");

    expect(response.body.error.message).toMatch(/path/);
  });

  test.each(["https://203.0.113.7:31000", "http://203.0.113.7:30000/", "https://agent.example.com", "http://[2001:db8::7]:30000"])(
    "public %s is accepted",
    async (agentUrl) => {
      const response = await register(strict, agentUrl);

      expect(response.status).toBe(201);
      expect(response.body.toolbox.agent_url).toBe(agentUrl);
    },
  );

  test("loopback is accepted when allowed", async () => {
    const response = await register(open, "http://127.0.0.1:30000");

    expect(response.status).toBe(201);
    expect(response.body.toolbox.agent_port).toBe(30000);
  });
});

describe("agent client address check", () => {
  let agent: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    agent = await startServer((response) => response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ agent_version: "1", engine_version: "1", instances: [] })));
  });

  afterAll(async () => {
    await agent?.close();
  });

  test("loopback literal is not called", async () => {
    const client = createDtmaClient({ baseUrl: agent.url, token: "t", timeoutMs: 2_000, allowPrivateAddresses: false });
    const before = agent.requests();

    const error = await failureOf(client.inventory());

    expect(error.failure).toBe("unreachable");
    expect(error.message).toBe(`cannot reach the agent at 127.0.0.1:${agent.port}`);
    expect(agent.requests()).toBe(before);
  });

  test("host name resolving to loopback is not called", async () => {
    const client = createDtmaClient({ baseUrl: `http://localhost:${agent.port}`, token: "t", timeoutMs: 2_000, allowPrivateAddresses: false });
    const before = agent.requests();

    const error = await failureOf(client.inventory());

    expect(error.failure).toBe("unreachable");
    expect(error.message).toBe(`cannot reach the agent at localhost:${agent.port}`);
    expect(agent.requests()).toBe(before);
  });

  test("any private resolved address blocks the call", async () => {
    const resolveHost = async () => ["203.0.113.7", "10.0.0.1"];
    const factory = createAgentClientFactory({ tokenSecret: TEST_AGENT_TOKEN_SECRET, timeoutMs: 2_000, allowPrivateAddresses: false, resolveHost });
    const client = await factory({ id: INSTANCE_ID, agent_url: `http://localhost:${agent.port}`, token_version: 1 });
    const before = agent.requests();

    const error = await failureOf(client.inventory());

    expect(error.failure).toBe("unreachable");
    expect(agent.requests()).toBe(before);
  });

  test("host name resolving to public addresses is called", async () => {
    const resolved: string[] = [];
    const resolveHost = async (hostname: string) => {
      resolved.push(hostname);
      return ["203.0.113.7"];
    };
    const client = createDtmaClient({ baseUrl: `http://localhost:${agent.port}`, token: "t", timeoutMs: 2_000, allowPrivateAddresses: false, resolveHost });

    await expect(client.inventory()).resolves.toMatchObject({ agent_version: "1" });
    expect(resolved).toEqual(["localhost"]);
  });

  test("failed resolution is unreachable", async () => {
    const resolveHost = async () => {
      throw new Error("getaddrinfo ENOTFOUND agent.invalid");
    };
    const client = createDtmaClient({ baseUrl: "http://agent.invalid:30000", token: "t", timeoutMs: 2_000, allowPrivateAddresses: false, resolveHost });

    const error = await failureOf(client.inventory());

    expect(error.message).toBe("cannot reach the agent at agent.invalid:30000");
  });

  test("loopback is called when allowed", async () => {
    const client = createDtmaClient({ baseUrl: agent.url, token: "t", timeoutMs: 2_000, allowPrivateAddresses: true });

    await expect(client.inventory()).resolves.toMatchObject({ agent_version: "1" });
  });

  test("redirect is not followed", async () => {
    const target = await startServer((response) => response.writeHead(200).end("{}"));
    const redirecting = await startServer((response) => response.writeHead(302, { location: `${target.url}/v1/inventory` }).end());
    try {
      const client = createDtmaClient({ baseUrl: redirecting.url, token: "t", timeoutMs: 2_000, allowPrivateAddresses: true });

      const error = await failureOf(client.inventory());

      expect(error.failure).toBe("rejected");
      expect(error.httpStatus).toBe(302);
      expect(target.requests()).toBe(0);
    } finally {
      await redirecting.close();
      await target.close();
    }
  });
});

describe("agent error messages", () => {
  test("non-contract error body is not echoed", async () => {
    const bodies = [
      { "content-type": "application/json", body: JSON.stringify({ error: { code: "made_up", message: LEAKED } }) },
      { "content-type": "application/json", body: JSON.stringify({ error: { code: "instance_not_found", message: LEAKED } }) },
      { "content-type": "application/json", body: JSON.stringify({ message: LEAKED }) },
      { "content-type": "text/plain", body: LEAKED },
    ];
    for (const reply of bodies) {
      const server = await startServer((response) => response.writeHead(500, { "content-type": reply["content-type"] }).end(reply.body));
      try {
        const client = createDtmaClient({ baseUrl: server.url, token: "t", timeoutMs: 2_000, allowPrivateAddresses: true });

        const error = await failureOf(client.ensure(INSTANCE_ID, { generation: 1, image: "nginx:1.27", port: 80, host_port: 30001, desired_state: "running" }));

        expect(error.message, reply.body).not.toContain(LEAKED);
        expect(error.message, reply.body).toContain(`127.0.0.1:${server.port}`);
        expect(error.message, reply.body).toContain("500");
        expect(error.agentCode, reply.body).toBeUndefined();
      } finally {
        await server.close();
      }
    }
  });

  test("contract error keeps code and message", async () => {
    const server = await startServer((response) =>
      response.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "instance_not_found", message: "no container for it" } })),
    );
    try {
      const client = createDtmaClient({ baseUrl: server.url, token: "t", timeoutMs: 2_000, allowPrivateAddresses: true });

      const error = await failureOf(client.start(INSTANCE_ID));

      expect(error.agentCode).toBe("instance_not_found");
      expect(error.message).toContain("no container for it");
    } finally {
      await server.close();
    }
  });

  test("non-HTTP port and closed port read alike", async () => {
    const nonHttp = await startNonHttpServer();
    const closedPort = await freePort();
    try {
      const options = { token: "t", timeoutMs: 2_000, allowPrivateAddresses: true };
      const open = await failureOf(createDtmaClient({ ...options, baseUrl: `http://127.0.0.1:${nonHttp.port}` }).inventory());
      const closed = await failureOf(createDtmaClient({ ...options, baseUrl: `http://127.0.0.1:${closedPort}` }).inventory());
      const blocked = await failureOf(createDtmaClient({ ...options, allowPrivateAddresses: false, baseUrl: `http://127.0.0.1:${closedPort}` }).inventory());

      expect(open.failure).toBe("unreachable");
      expect(open.message).toBe(`cannot reach the agent at 127.0.0.1:${nonHttp.port}`);
      expect(closed.message).toBe(`cannot reach the agent at 127.0.0.1:${closedPort}`);
      expect(blocked.message).toBe(closed.message);
    } finally {
      await nonHttp.close();
    }
  });
});

describe("instances function with a leaky target", () => {
  let functions: FunctionsUnderTest;
  let fake: FakeAgent;
  let token: string;
  let ownerId: string;

  beforeAll(async () => {
    functions = createFunctions({ databaseUrl: getDb().url, allowPrivateAgentUrls: false, agentTimeoutMs: 2_000 });
    fake = await startFakeAgent();
    ownerId = await createUser(getDb().sql);
    token = await mintUserJwt(ownerId);
  });

  afterAll(async () => {
    await functions?.close();
    await fake?.close();
  });

  test("leaky error body stays out of API and status", async () => {
    const leaky = await startServer((response) => response.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "oops", message: LEAKED } })));
    const open = createFunctions({ databaseUrl: getDb().url, allowPrivateAgentUrls: true, agentTimeoutMs: 2_000 });
    try {
      const toolbox = await call(open.toolboxes, "POST", "/toolboxes", { token, body: { name: "leaky", agent_url: leaky.url } });
      const deployed = await call(open.instances, "POST", "/instances", { token, body: { toolbox_id: toolbox.body.toolbox.id, name: "leak", image: "nginx:1.27", port: 80 } });

      expect(deployed.status).toBe(502);
      expect(deployed.body.error.code).toBe("agent_error");
      expect(deployed.text).not.toContain(LEAKED);
      const [row] = await getDb().sql`select status_reason from public.tool_instances where id = ${deployed.body.error.details.instance.id}`;
      expect(row!.status_reason).not.toContain(LEAKED);
      expect(row!.status_reason).toContain(`127.0.0.1:${leaky.port}`);
    } finally {
      await open.close();
      await leaky.close();
    }
  });

  test("toolbox stored at loopback is not called", async () => {
    const toolbox = await functions.registry.createToolbox({ ownerId, name: "stored-loopback", agentUrl: fake.url, agentPort: Number(new URL(fake.url).port) });
    const before = fake.requests.length;

    const deployed = await call(functions.instances, "POST", "/instances", { token, body: { toolbox_id: toolbox.id, name: "blocked", image: "nginx:1.27", port: 80 } });

    expect(deployed.status).toBe(503);
    expect(deployed.body.error.code).toBe("agent_unreachable");
    expect(deployed.body.error.message).toBe(`cannot reach the agent at ${new URL(fake.url).host}`);
    expect(fake.requests.length).toBe(before);
  });
});

// The real instances function (its index.ts) served by Deno behind the local gateway, called
// with supabase-js as the management UI does. The agent is the fake one from
// support/fake-agent.ts, since this test is about serving and transport, not containers.
import { createClient, FunctionsHttpError, type SupabaseClient } from "@supabase/supabase-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import WebSocket from "ws";
import { InstanceResponse } from "@berth/shared";
import { startFunctions, type RunningFunction } from "../../stack/functions.ts";
import { startGateway, type Gateway } from "../../stack/gateway.ts";
import { LOCAL_JWT_SECRET, mintAnonKey, mintUserJwt } from "../../stack/jwt.ts";
import { freePort } from "../../stack/net.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { startFakeAgent, type FakeAgent } from "./support/fake-agent.ts";
import { call, createFunctions, TEST_AGENT_TOKEN_SECRET, type FunctionsUnderTest } from "./support/functions.ts";

const DENO_START_TIMEOUT_MS = 120_000;

const getDb = useTestDatabase();

describe("instances function under Deno", () => {
  let served: RunningFunction[] = [];
  let gateway: Gateway;
  let agent: FakeAgent;
  let arrange: FunctionsUnderTest;
  let userClient: SupabaseClient;
  let anonClient: SupabaseClient;
  let toolboxId: string;
  const output: string[] = [];

  beforeAll(async () => {
    agent = await startFakeAgent();
    arrange = createFunctions({ databaseUrl: getDb().url });
    const userToken = await mintUserJwt(await createUser(getDb().sql));
    const toolbox = await call(arrange.toolboxes, "POST", "/toolboxes", { token: userToken, body: { name: "deno", agent_url: agent.url } });
    toolboxId = toolbox.body.toolbox.id;

    const gatewayPort = await freePort();
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    served = await startFunctions([{ name: "instances", verifyJwt: true }], {
      env: {
        SUPABASE_URL: gatewayUrl,
        SUPABASE_DB_URL: getDb().url,
        SUPABASE_JWT_SECRET: LOCAL_JWT_SECRET,
        BERTH_AGENT_TOKEN_SECRET: TEST_AGENT_TOKEN_SECRET,
        BERTH_AGENT_TIMEOUT_MS: "5000",
        BERTH_ALLOW_PRIVATE_AGENT_URLS: "true",
      },
      onOutput: (_name, line) => output.push(line),
    });
    gateway = await startGateway({
      port: gatewayPort,
      jwtSecret: LOCAL_JWT_SECRET,
      routes: served.map((fn) => ({ name: fn.name, verifyJwt: fn.verifyJwt, upstream: fn.server.url })),
    });

    const anonKey = await mintAnonKey();
    // Node 20 has no global WebSocket, which supabase-js needs to construct its realtime client.
    // The ws class differs from supabase-js's WebSocketLikeConstructor type only in typings.
    const options = { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: WebSocket as never } };
    userClient = createClient(gatewayUrl, anonKey, { ...options, global: { headers: { Authorization: `Bearer ${userToken}` } } });
    anonClient = createClient(gatewayUrl, anonKey, options);
  }, DENO_START_TIMEOUT_MS);

  afterAll(async () => {
    await gateway?.stop();
    await Promise.all(served.map((fn) => fn.server.stop()));
    await arrange?.close();
    await agent?.close();
  });

  test("invoke deploys and reads an instance", async () => {
    const secret = "deno-gateway-secret-value";

    const deployed = await userClient.functions.invoke("instances", {
      method: "POST",
      body: { toolbox_id: toolboxId, name: "via-gateway", image: "localhost/berth/http-echo:test", port: 8080, secrets: { API_KEY: secret } },
    });

    expect(deployed.error).toBeNull();
    const instance = InstanceResponse.parse(deployed.data);
    expect(instance.status).toBe("running");
    expect(instance.secret_names).toEqual(["API_KEY"]);

    const fetched = await userClient.functions.invoke(`instances/${instance.id}`, { method: "GET" });
    expect(fetched.error).toBeNull();
    expect(InstanceResponse.parse(fetched.data).id).toBe(instance.id);
    expect(JSON.stringify([deployed.data, fetched.data])).not.toContain(secret);
    expect(output.join("\n")).not.toContain(secret);
  });

  test("function logs one JSON line per request", async () => {
    const before = output.length;

    const listed = await userClient.functions.invoke("instances", { method: "GET", headers: { "x-request-id": "deno-list-1" } });

    expect(listed.error).toBeNull();
    const lines = output.slice(before).map((line) => JSON.parse(line));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: "request finished", function: "instances", request_id: "deno-list-1", status: 200, outcome: "ok" });
  });

  test("anon key gets 401 from the function", async () => {
    const listed = await anonClient.functions.invoke("instances", { method: "GET" });

    expect(listed.data).toBeNull();
    expect(listed.error).toBeInstanceOf(FunctionsHttpError);
    const response = (listed.error as FunctionsHttpError).context as Response;
    expect(response.status).toBe(401);
    expect((await response.json()).error.code).toBe("unauthorized");
  });

  test("preflight passes the gateway", async () => {
    const response = await fetch(`${gateway.url}/functions/v1/instances`, { method: "OPTIONS" });

    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-headers")).toContain("idempotency-key");
  });
});

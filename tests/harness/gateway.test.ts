import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readFunctionSpecs, startFunctions, type RunningFunction } from "../../stack/functions.ts";
import { startGateway, type Gateway } from "../../stack/gateway.ts";
import { LOCAL_JWT_SECRET, mintAnonKey, mintUserJwt } from "../../stack/jwt.ts";
import { freePort } from "../../stack/net.ts";
import { REPO_ROOT } from "../../stack/paths.ts";

const FIXTURES = path.join(REPO_ROOT, "tests", "fixtures", "functions");

describe("functions gateway", () => {
  let functions: RunningFunction[] = [];
  let gateway: Gateway;

  beforeAll(async () => {
    const specs = readFunctionSpecs(path.join(FIXTURES, "config.toml"), FIXTURES);
    functions = await startFunctions(specs, { env: {}, functionsDir: FIXTURES });
    gateway = await startGateway({
      port: await freePort(),
      jwtSecret: LOCAL_JWT_SECRET,
      routes: functions.map((fn) => ({ name: fn.name, verifyJwt: fn.verifyJwt, upstream: fn.server.url })),
    });
  });

  afterAll(async () => {
    await gateway?.stop();
    await Promise.all(functions.map((fn) => fn.server.stop()));
  });

  test("forwards a request with a valid JWT", async () => {
    const response = await fetch(`${gateway.url}/functions/v1/hello/things?x=1`, {
      method: "POST",
      headers: { authorization: `Bearer ${await mintUserJwt("0b5a3c2e-1111-4222-8333-444455556666")}` },
      body: "{}",
    });

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ hello: "berth", method: "POST", path: "/hello/things" });
  });

  test("accepts the anon key", async () => {
    const response = await fetch(`${gateway.url}/functions/v1/hello`, {
      headers: { authorization: `Bearer ${await mintAnonKey()}` },
    });

    expect(response.status).toBe(200);
  });

  test("rejects a missing JWT when verify_jwt is on", async () => {
    const response = await fetch(`${gateway.url}/functions/v1/hello`);

    expect(response.status).toBe(401);
    expect((await response.json()).error.code).toBe("unauthorized");
  });

  test("rejects a JWT signed with another secret", async () => {
    const token = await mintAnonKey({ secret: "not-the-project-secret-but-32-chars-long" });
    const response = await fetch(`${gateway.url}/functions/v1/hello`, { headers: { authorization: `Bearer ${token}` } });

    expect(response.status).toBe(401);
  });

  test("answers 404 for an unknown function", async () => {
    const response = await fetch(`${gateway.url}/functions/v1/nope`, { headers: { authorization: `Bearer ${await mintAnonKey()}` } });

    expect(response.status).toBe(404);
    expect((await response.json()).error.code).toBe("not_found");
  });
});

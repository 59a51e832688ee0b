import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startDenoServer, type DenoServer } from "../../stack/deno.ts";
import { freePort } from "../../stack/net.ts";
import { REPO_ROOT } from "../../stack/paths.ts";

const FIXTURE = path.join(REPO_ROOT, "tests", "fixtures", "functions", "hello");

describe("deno function server", () => {
  let server: DenoServer;

  beforeAll(async () => {
    server = await startDenoServer({
      entry: path.join(FIXTURE, "index.ts"),
      config: path.join(FIXTURE, "deno.json"),
      port: await freePort(),
    });
  });

  afterAll(async () => {
    await server?.stop();
  });

  test("serves a request", async () => {
    const response = await fetch(`${server.url}/hello`, { method: "POST" });

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ hello: "berth", method: "POST", path: "/hello" });
  });

  test("uses the shared error table", async () => {
    const response = await fetch(`${server.url}/missing`);

    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: "not_found", message: "no such route" } });
  });
});

import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ErrorBody, ToolboxCreateResponse, ToolboxListResponse, ToolboxResponse } from "@berth/shared";
import { verifyAgentToken } from "../../supabase/functions/_shared/agent-token.ts";
import type { ToolboxRow } from "../../supabase/functions/_shared/registry.ts";
import { installCommand, shellQuote } from "../../supabase/functions/toolboxes/responses.ts";
import { mintAnonKey, mintServiceRoleKey, mintUserJwt } from "../../stack/jwt.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { call, countWrites, createFunctions, TEST_AGENT_TOKEN_SECRET, TEST_CONTROL_PLANE_URL, type FunctionsUnderTest } from "./support/functions.ts";

const getDb = useTestDatabase();

describe("toolboxes function", () => {
  let functions: FunctionsUnderTest;
  let ownerToken: string;
  let otherToken: string;
  let ownerId: string;

  beforeAll(async () => {
    functions = createFunctions({ databaseUrl: getDb().url });
    ownerId = await createUser(getDb().sql);
    ownerToken = await mintUserJwt(ownerId);
    otherToken = await mintUserJwt(await createUser(getDb().sql));
  });

  afterAll(async () => {
    await functions?.close();
  });

  async function register(name: string, agentUrl = "http://203.0.113.7:30000") {
    const response = await call(functions.toolboxes, "POST", "/toolboxes", { token: ownerToken, body: { name, agent_url: agentUrl } });
    expect(response.status).toBe(201);
    return ToolboxCreateResponse.parse(response.body);
  }

  test("register returns token and install command", async () => {
    const created = await register("edge-1", "https://203.0.113.7:31000");

    expect(created.toolbox.status).toBe("provisioning");
    expect(created.toolbox.agent_port).toBe(31000);
    expect(await verifyAgentToken(TEST_AGENT_TOKEN_SECRET, created.toolbox.id, 1, created.agent_token)).toBe(true);
    expect(created.install_command).toContain(`-e DTMA_TOKEN=${created.agent_token}`);
    expect(created.install_command).toContain(`-e DTMA_TOOLBOX_ID=${created.toolbox.id}`);
    expect(created.install_command).toContain(`-e DTMA_CONTROL_PLANE_URL=${TEST_CONTROL_PLANE_URL}`);
    expect(created.install_command).toContain("-e DTMA_PORT=31000");
    expect(created.install_command).toMatch(/^docker run -d --name berth-dtma .* berth-dtma$/);
  });

  test("install command publishes on an IPv4 agent host", async () => {
    const created = await register("edge-ipv4", "https://203.0.113.7:31000");

    expect(created.install_command).toContain("-e DTMA_PUBLISH_IP=203.0.113.7 ");
    expect(created.install_command).toContain(" -p 203.0.113.7:31000:31000 ");
    expect(created.install_command).not.toContain("0.0.0.0");
    expect(created.install_command).not.toContain("\n");
  });

  test("install command publishes on an IPv6 agent host", async () => {
    const created = await register("edge-ipv6", "http://[2001:db8::5]:30000");

    // The brackets are quoted, because the shell would read them as a file name pattern.
    expect(created.install_command).toContain("-e DTMA_PUBLISH_IP=2001:db8::5 ");
    expect(created.install_command).toContain(" -p '[2001:db8::5]:30000:30000' ");
    expect(created.install_command).not.toContain("0.0.0.0");
  });

  test("install command warns for a host name", async () => {
    const created = await register("edge-named", "https://agent.example.com:30000");
    const [comment, command, ...rest] = created.install_command.split("\n");

    expect(rest).toEqual([]);
    expect(comment).toMatch(/^# /);
    expect(comment).toContain("every IPv4 address");
    expect(comment).toContain(`port 30000`);
    expect(comment).toContain(`ports ${created.toolbox.port_range_start}-${created.toolbox.port_range_end}`);
    expect(comment).toContain("Firewall");
    expect(command).toContain("-e DTMA_PUBLISH_IP=0.0.0.0 ");
    expect(command).toContain(" -p 0.0.0.0:30000:30000 ");
    expect(command).toMatch(/^docker run -d --name berth-dtma .* berth-dtma$/);
  });

  test("install command runs as written in sh", async () => {
    // The schema accepts shell syntax in a host name, so the host name must not reach the command.
    const created = await register("edge-shell", "http://agent$(touch${IFS}injected)'`touch${IFS}ticks`.example:30000");

    const { argv, files } = runWithFakeDocker(created.install_command);

    expect(files).toEqual([]);
    expect(argv).toEqual([
      "run", "-d", "--name", "berth-dtma", "--restart", "unless-stopped",
      "-v", "/var/run/docker.sock:/var/run/docker.sock",
      "-e", `DTMA_TOKEN=${created.agent_token}`,
      "-e", `DTMA_TOOLBOX_ID=${created.toolbox.id}`,
      "-e", `DTMA_CONTROL_PLANE_URL=${TEST_CONTROL_PLANE_URL}`,
      "-e", "DTMA_PORT=30000",
      "-e", "DTMA_PUBLISH_IP=0.0.0.0",
      "-p", "0.0.0.0:30000:30000",
      "berth-dtma",
    ]);
  });

  test("token is not logged or readable", async () => {
    const created = await register("edge-secret-check");

    expect(functions.logLines.join("\n")).not.toContain(created.agent_token);
    const listed = await call(functions.toolboxes, "GET", "/toolboxes", { token: ownerToken });
    expect(listed.text).not.toContain(created.agent_token);
    const fetched = await call(functions.toolboxes, "GET", `/toolboxes/${created.toolbox.id}`, { token: ownerToken });
    expect(fetched.text).not.toContain(created.agent_token);
  });

  test("list and get own toolboxes", async () => {
    const created = await register("edge-2");

    const listed = await call(functions.toolboxes, "GET", "/toolboxes", { token: ownerToken });
    const fetched = await call(functions.toolboxes, "GET", `/toolboxes/${created.toolbox.id}`, { token: ownerToken });

    expect(listed.status).toBe(200);
    expect(ToolboxListResponse.parse(listed.body).toolboxes.map((toolbox) => toolbox.id)).toContain(created.toolbox.id);
    expect(fetched.status).toBe(200);
    expect(ToolboxResponse.parse(fetched.body)).toEqual(created.toolbox);
  });

  test("rotate issues a new token", async () => {
    const created = await register("edge-3");

    const rotated = await call(functions.toolboxes, "POST", `/toolboxes/${created.toolbox.id}/rotate-token`, { token: ownerToken });

    expect(rotated.status).toBe(200);
    const body = ToolboxCreateResponse.parse(rotated.body);
    expect(body.toolbox.token_version).toBe(2);
    expect(body.agent_token).not.toBe(created.agent_token);
    expect(await verifyAgentToken(TEST_AGENT_TOKEN_SECRET, created.toolbox.id, 2, body.agent_token)).toBe(true);
    expect(await verifyAgentToken(TEST_AGENT_TOKEN_SECRET, created.toolbox.id, 2, created.agent_token)).toBe(false);
  });

  test("decommission rejected with live instances", async () => {
    const created = await register("edge-4");
    await getDb().sql`select berth_private.create_instance(${ownerId}, ${created.toolbox.id}, 'tool', 'nginx:1.27', 80)`;

    const rejected = await call(functions.toolboxes, "DELETE", `/toolboxes/${created.toolbox.id}`, { token: ownerToken });

    expect(rejected.status).toBe(409);
    expect(rejected.body.error.code).toBe("toolbox_not_empty");
    const [row] = await getDb().sql`select status from public.toolboxes where id = ${created.toolbox.id}`;
    expect(row!.status).toBe("provisioning");
  });

  test("decommission an empty toolbox", async () => {
    const created = await register("edge-5");

    const removed = await call(functions.toolboxes, "DELETE", `/toolboxes/${created.toolbox.id}`, { token: ownerToken });

    expect(removed.status).toBe(200);
    expect(removed.body.status).toBe("decommissioned");
  });

  test.each([
    ["name with a space", { name: "my box", agent_url: "http://203.0.113.7:30000" }, "name"],
    ["uppercase name", { name: "MyBox", agent_url: "http://203.0.113.7:30000" }, "name"],
    ["agent_url without scheme", { name: "ok-name", agent_url: "203.0.113.7:30000" }, "agent_url"],
    ["missing agent_url", { name: "ok-name" }, "agent_url"],
    ["unknown field", { name: "ok-name", agent_url: "http://203.0.113.7:30000", region: "fra1" }, "body"],
  ])("register rejects %s", async (_case, body, field) => {
    const before = await countWrites(getDb().sql);

    const response = await call(functions.toolboxes, "POST", "/toolboxes", { token: ownerToken, body });

    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("invalid_request");
    expect(response.body.error.details.fields.map((issue: { field: string }) => issue.field)).toContain(field);
    expect(await countWrites(getDb().sql)).toEqual(before);
  });

  test("duplicate name is a conflict", async () => {
    await register("edge-dup");

    const again = await call(functions.toolboxes, "POST", "/toolboxes", { token: ownerToken, body: { name: "edge-dup", agent_url: "http://203.0.113.8:30000" } });

    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("name_taken");
  });

  test("other user gets 404 everywhere", async () => {
    const created = await register("edge-private");
    const id = created.toolbox.id;
    const before = await countWrites(getDb().sql);

    for (const [method, path] of [
      ["GET", `/toolboxes/${id}`],
      ["POST", `/toolboxes/${id}/rotate-token`],
      ["DELETE", `/toolboxes/${id}`],
    ] as const) {
      const response = await call(functions.toolboxes, method, path, { token: otherToken });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(ErrorBody.parse(response.body).error.code, `${method} ${path}`).toBe("toolbox_not_found");
    }
    const listed = await call(functions.toolboxes, "GET", "/toolboxes", { token: otherToken });
    expect(listed.body.toolboxes).toEqual([]);
    expect(await countWrites(getDb().sql)).toEqual(before);
    const [row] = await getDb().sql`select token_version, status from public.toolboxes where id = ${id}`;
    expect(row).toEqual({ token_version: 1, status: "provisioning" });
  });

  test("anon and service keys get 401", async () => {
    for (const token of [await mintAnonKey(), await mintServiceRoleKey(), null]) {
      const response = await call(functions.toolboxes, "GET", "/toolboxes", { token });
      expect(response.status).toBe(401);
      expect(response.body.error.code).toBe("unauthorized");
    }
  });

  test("options returns the CORS preflight", async () => {
    const response = await call(functions.toolboxes, "OPTIONS", "/toolboxes");

    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(response.headers.get("access-control-allow-headers")).toContain("authorization");
  });

  test("unknown route and method", async () => {
    const missing = await call(functions.toolboxes, "GET", "/toolboxes/00000000-0000-4000-8000-000000000000/nope", { token: ownerToken });
    const wrongMethod = await call(functions.toolboxes, "PUT", "/toolboxes", { token: ownerToken });

    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_found");
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.body.error.code).toBe("method_not_allowed");
  });

  test("request logs one summary line", async () => {
    const linesBefore = functions.logLines.length;

    const response = await call(functions.toolboxes, "GET", "/toolboxes", { token: ownerToken, headers: { "x-request-id": "req-toolboxes-1" } });

    expect(response.headers.get("x-request-id")).toBe("req-toolboxes-1");
    const lines = functions.logLines.slice(linesBefore).map((line) => JSON.parse(line));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "info", msg: "request finished", request_id: "req-toolboxes-1", user_id: ownerId, status: 200, outcome: "ok" });
  });
});

describe("installCommand", () => {
  const toolbox = {
    id: "4b3f533b-bdf1-44c8-aa09-eaa47386485e",
    agent_url: "http://[::ffff:10.0.0.5]:30000",
    agent_port: 30000,
    port_range_start: 30001,
    port_range_end: 30999,
  } as ToolboxRow;

  test("quotes a control plane URL with shell syntax", () => {
    const controlPlaneUrl = "https://cp.example/functions/v1/$(touch injected)/`touch ticks`/it's;&|<>*?[a]~ \\";

    const { argv, files } = runWithFakeDocker(installCommand(toolbox, "token-0123456789abcdef", controlPlaneUrl));

    expect(files).toEqual([]);
    expect(argv).toContain(`DTMA_CONTROL_PLANE_URL=${controlPlaneUrl}`);
    expect(argv).toContain("DTMA_PUBLISH_IP=::ffff:a00:5");
    expect(argv).toContain("[::ffff:a00:5]:30000:30000");
  });

  test.each([
    ["plain word", "berth-dtma", "berth-dtma"],
    ["empty word", "", "''"],
    ["single quote", "it's", "'it'\\''s'"],
    ["command substitution", "$(id)", "'$(id)'"],
    ["glob", "[::1]:1:1", "'[::1]:1:1'"],
    ["leading tilde", "~root", "'~root'"],
  ])("shellQuote handles %s", (_case, word, quoted) => {
    expect(shellQuote(word)).toBe(quoted);
  });
});

/**
 * Runs an install command in /bin/sh, in an empty directory, with `docker` defined as a shell
 * function that prints its arguments. Returns those arguments and the files the command created.
 */
function runWithFakeDocker(command: string): { argv: string[]; files: string[] } {
  const directory = mkdtempSync(path.join(tmpdir(), "berth-install-command-"));
  try {
    const fakeDocker = `docker() { printf '%s\\0' "$@"; }`;
    const result = spawnSync("/bin/sh", ["-c", `${fakeDocker}\n${command}`], { cwd: directory, encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    return { argv: result.stdout.split("\0").slice(0, -1), files: readdirSync(directory) };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

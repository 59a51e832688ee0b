// Runs the `berth` bin as a separate process, the way an operator does, against the real
// functions served by Deno behind the local gateway and a real database. The toolbox's agent is
// the fake one from the functions' test support, so the tests can make it hang or fail.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { writeEnvFile } from "../../../../stack/dev-secrets.ts";
import { mintUserJwt } from "../../../../stack/jwt.ts";
import { REPO_ROOT } from "../../../../stack/paths.ts";
import { createUser, useTestDatabase } from "../../../../tests/support/db.ts";
import { startFakeAgent, type FakeAgent } from "../../../../tests/functions/support/fake-agent.ts";
import { startFunctionStack, type FunctionStack } from "../support/function-stack.ts";

const BIN = path.join(REPO_ROOT, "packages", "client", "bin", "berth.js");
const STACK_START_TIMEOUT_MS = 180_000;
const IMAGE = "ghcr.io/example/mcp-server:1.0";

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `berth` from /bin/sh after `set -a; . FILE; set +a`, so its environment is PATH plus
 * what the shell exports from the file.
 */
function runSourced(file: string, args: string[], cwd: string): Promise<RunResult> {
  return runProcess("/bin/sh", ["-c", 'set -a; . "$1"; set +a; shift; exec "$@"', "sh", file, process.execPath, BIN, ...args], {}, cwd);
}

/** Runs `berth` with only the given environment (plus PATH) in `cwd`. */
function runBerth(args: string[], env: Record<string, string>, cwd: string): Promise<RunResult> {
  return runProcess(process.execPath, [BIN, ...args], env, cwd);
}

function runProcess(command: string, args: string[], env: Record<string, string>, cwd: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { PATH: process.env.PATH ?? "", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("berth without a control plane", () => {
  let cwd: string;

  beforeAll(async () => {
    cwd = await mkdtemp(path.join(os.tmpdir(), "berth-cli-"));
  });

  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  test("help lists commands and exit codes", async () => {
    const result = await runBerth(["help"], {}, cwd);

    expect(result.code).toBe(0);
    for (const command of ["ls", "deploy", "start", "stop", "restart", "rm", "logs", "events", "toolboxes", "reconcile", "help"]) {
      expect(result.stdout).toMatch(new RegExp(`^  ${command} `, "m"));
    }
    expect(result.stdout).toContain("3  the instance or toolbox was not found");
    expect(result.stdout).toContain("BERTH_USER_JWT, or\n  BERTH_DEV_USER_JWT when BERTH_USER_JWT is unset or empty.");
  });

  test("command help exits 0", async () => {
    const result = await runBerth(["deploy", "--help"], {}, cwd);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain("usage: berth deploy --name NAME --image IMAGE --port PORT [options]");
    expect(result.stdout).toContain("--secret NAME[=VALUE]");
  });

  test("no command is a usage error", async () => {
    const result = await runBerth([], {}, cwd);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain("usage: berth COMMAND");
  });

  test("unknown command exits 2", async () => {
    const result = await runBerth(["frobnicate"], {}, cwd);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe('error: unknown command "frobnicate". Run `berth help` for the list of commands.\n');
  });

  test("unknown option exits 2", async () => {
    const result = await runBerth(["ls", "--verbose"], {}, cwd);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe("error: unknown option --verbose for `berth ls`. Run `berth help ls` for its options.\n");
  });

  test("missing config file exits 2", async () => {
    const result = await runBerth(["ls", "--config", "nope.env"], {}, cwd);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`config file ${path.join(cwd, "nope.env")} not found`);
  });

  test("missing user token exits 2", async () => {
    const result = await runBerth(["ls"], { SUPABASE_URL: "http://127.0.0.1:9", SUPABASE_ANON_KEY: "anon" }, cwd);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      "error: BERTH_USER_JWT is missing in the environment, and so is BERTH_DEV_USER_JWT. Set BERTH_USER_JWT to a signed-in user's access token.\n",
    );
  });

  test("unreachable control plane exits 1", async () => {
    const result = await runBerth(["ls"], { SUPABASE_URL: "http://127.0.0.1:9", SUPABASE_ANON_KEY: "anon", BERTH_USER_JWT: "token" }, cwd);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("(code network_error). Check that the control plane is running at http://127.0.0.1:9");
  });

  test("json errors are JSON", async () => {
    const result = await runBerth(["stop", "--json"], {}, cwd);

    expect(result.code).toBe(2);
    expect(JSON.parse(result.stderr)).toMatchObject({ error: { code: "usage_error", details: { exit_code: 2 } } });
  });
});

describe("berth against the functions", () => {
  const db = useTestDatabase();
  let stack: FunctionStack;
  let agent: FakeAgent;
  let cwd: string;
  let env: Record<string, string>;
  let toolboxId: string;

  const berth = (...args: string[]) => runBerth(args, env, cwd);

  beforeAll(async () => {
    cwd = await mkdtemp(path.join(os.tmpdir(), "berth-cli-"));
    agent = await startFakeAgent();
    stack = await startFunctionStack(db().url);
    env = {
      SUPABASE_URL: stack.url,
      SUPABASE_ANON_KEY: stack.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: stack.serviceRoleKey,
      BERTH_USER_JWT: await mintUserJwt(await createUser(db().sql)),
    };

    const response = await fetch(`${stack.url}/functions/v1/toolboxes`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.BERTH_USER_JWT}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "cli-box", agent_url: agent.url }),
    });
    toolboxId = ((await response.json()) as { toolbox: { id: string } }).toolbox.id;
    env.BERTH_LOCAL_TOOLBOX_ID = toolboxId;
  }, STACK_START_TIMEOUT_MS);

  afterAll(async () => {
    await stack?.stop();
    await agent?.close();
    if (cwd) await rm(cwd, { recursive: true, force: true });
  });

  test("toolboxes prints a table", async () => {
    const result = await berth("toolboxes");

    expect(result.code).toBe(0);
    const [header, row] = result.stdout.split("\n");
    expect(header).toMatch(/^ID\s+NAME\s+STATUS\s+AGENT URL\s+AGENT VERSION\s+LAST HEARTBEAT\s+CREATED$/);
    expect(row).toContain(toolboxId.slice(0, 8));
    expect(row).toContain("cli-box");
    expect(row).toContain("never");
  });

  test("deploy waits and hides secrets", async () => {
    const secret = `secret-${randomUUID()}`;

    const result = await berth("deploy", "--name", "cli-search", "--image", IMAGE, "--port", "8080", "--env", "MODE=fast", "--secret", `API_KEY=${secret}`, "--command", "node server.js --port '8080'");

    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^deployed cli-search \([0-9a-f]{8}\): running\n/);
    expect(result.stdout).toContain("secrets:  API_KEY");
    expect(result.stdout).not.toContain(secret);
    const put = agent.requests.find((request) => request.method === "PUT" && request.body?.command?.[0] === "node");
    expect(put?.body.command).toEqual(["node", "server.js", "--port", "8080"]);
  });

  test("deploy --json returns the row", async () => {
    const result = await berth("deploy", "--name", "cli-json", "--image", IMAGE, "--port", "8080", "--toolbox", "cli-box", "--json");

    expect(result.code).toBe(0);
    const body = JSON.parse(result.stdout);
    expect(body.in_progress).toBe(false);
    expect(body.instance.name).toBe("cli-json");
    expect(body.instance.status).toBe("running");
  });

  test("ls prints aligned rows", async () => {
    await berth("deploy", "--name", "cli-listed", "--image", IMAGE, "--port", "8080", "--no-wait");

    const result = await berth("ls");

    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAME\s+STATUS\s+IMAGE\s+ENDPOINT\s+TOOLBOX\s+CHANGED$/);
    const listed = lines.find((line) => line.includes("cli-listed"));
    expect(listed).toMatch(/running/);
    expect(listed).toMatch(/just now|\d+s ago/);
    const nameColumn = lines[0]?.indexOf("NAME");
    expect(listed?.indexOf("cli-listed")).toBe(nameColumn);
  });

  test("ls --json lists instances", async () => {
    const result = await berth("ls", "--json");

    expect(result.code).toBe(0);
    const body = JSON.parse(result.stdout);
    expect(body.instances.map((instance: { name: string }) => instance.name)).toContain("cli-listed");
  });

  test("stop and start by name", async () => {
    await berth("deploy", "--name", "cli-cycled", "--image", IMAGE, "--port", "8080");

    const stopped = await berth("stop", "cli-cycled");
    const started = await berth("start", "cli-cycled", "--json");

    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toMatch(/^stopped cli-cycled \([0-9a-f]{8}\): stopped\n/);
    expect(started.code).toBe(0);
    expect(JSON.parse(started.stdout).instance.status).toBe("running");
  });

  test("restart by id prefix", async () => {
    const deployed = JSON.parse((await berth("deploy", "--name", "cli-prefixed", "--image", IMAGE, "--port", "8080", "--json")).stdout);

    const result = await berth("restart", deployed.instance.id.slice(0, 8));

    expect(result.code).toBe(0);
    expect(result.stdout).toContain("restarted cli-prefixed");
  });

  test("logs prints lines", async () => {
    await berth("deploy", "--name", "cli-logged", "--image", IMAGE, "--port", "8080");

    const result = await berth("logs", "cli-logged", "--tail", "5");

    expect(result.code).toBe(0);
    expect(result.stdout).toBe("fake log line\n");
  });

  test("rm removes the instance", async () => {
    await berth("deploy", "--name", "cli-removed", "--image", IMAGE, "--port", "8080");

    const result = await berth("rm", "cli-removed");
    const listed = await berth("ls");

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^removed cli-removed/);
    expect(listed.stdout).not.toContain("cli-removed");
  });

  test("unknown id exits 3", async () => {
    const id = randomUUID();

    const result = await berth("stop", id);

    expect(result.code).toBe(3);
    expect(result.stderr).toBe(`error: instance ${id.slice(0, 8)}… not found (code instance_not_found). Run \`berth ls\` to see your instances.\n`);
  });

  test("unknown id in json is whole", async () => {
    const id = randomUUID();

    const result = await berth("stop", id, "--json");

    expect(result.code).toBe(3);
    expect(JSON.parse(result.stderr)).toEqual({
      error: {
        code: "instance_not_found",
        message: `instance ${id} not found. Run \`berth ls\` to see your instances.`,
        details: { fields: [], exit_code: 3 },
      },
    });
  });

  test("unknown toolbox in json omits code", async () => {
    const result = await berth("ls", "--toolbox", "no-such-box", "--json");

    expect(result.code).toBe(3);
    expect(JSON.parse(result.stderr).error).toMatchObject({
      code: "toolbox_not_found",
      message: 'no toolbox matches "no-such-box" by name or id. Run `berth toolboxes` to see your toolboxes.',
    });
  });

  test("sourced dev.env runs commands", async () => {
    // `npm start` writes these keys, and the README loads them with `set -a; . .berth/dev.env; set +a`.
    const envFile = path.join(cwd, "sourced", "dev.env");
    await writeEnvFile(envFile, {
      SUPABASE_URL: stack.url,
      SUPABASE_ANON_KEY: stack.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: stack.serviceRoleKey,
      SUPABASE_DB_URL: db().url,
      BERTH_DEV_USER_JWT: env.BERTH_USER_JWT as string,
      BERTH_LOCAL_TOOLBOX_ID: toolboxId,
      DOCKER_HOST: "unix:///nonexistent/podman.sock",
      DTMA_URL: agent.url,
    });

    const listed = await runSourced(envFile, ["ls", "--json"], cwd);
    const deployed = await runSourced(envFile, ["deploy", "--name", "cli-sourced", "--image", IMAGE, "--port", "8080", "--json"], cwd);

    expect(listed.stderr).toBe("");
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).instances).toBeInstanceOf(Array);
    expect(deployed.stderr).toBe("");
    expect(deployed.code).toBe(0);
    expect(JSON.parse(deployed.stdout).instance.toolbox_id).toBe(toolboxId);
  });

  test("unknown name exits 3", async () => {
    const result = await berth("logs", "no-such-instance");

    expect(result.code).toBe(3);
    expect(result.stderr).toContain('no instance matches "no-such-instance"');
  });

  test("unknown toolbox name exits 3", async () => {
    const result = await berth("deploy", "--name", "cli-lost", "--image", IMAGE, "--port", "8080", "--toolbox", "no-such-box");

    expect(result.code).toBe(3);
    expect(result.stderr).toBe('error: no toolbox matches "no-such-box" by name or id (code toolbox_not_found). Run `berth toolboxes` to see your toolboxes.\n');
  });

  test("unknown toolbox id exits 2", async () => {
    // The function rejects a toolbox_id the caller does not own as an invalid value of the body.
    const result = await berth("deploy", "--name", "cli-lost", "--image", IMAGE, "--port", "8080", "--toolbox", randomUUID());

    expect(result.code).toBe(2);
    expect(result.stderr).toContain("(code invalid_request)");
    expect(result.stderr).toMatch(/\n {2}toolbox_id: /);
  });

  test("invalid values exit 2 with fields", async () => {
    const result = await berth("deploy", "--name", "Bad Name", "--image", IMAGE, "--port", "8080");

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^error: invalid deploy request: name must be/);
    expect(result.stderr).toMatch(/\n {2}name: must be/);
  });

  test("missing flags exit 2", async () => {
    const result = await berth("deploy", "--name", "cli-partial");

    expect(result.code).toBe(2);
    expect(result.stderr).toBe("error: `berth deploy` needs --image, --port. Usage: berth deploy --name NAME --image IMAGE --port PORT\n");
  });

  test("taken name exits 1", async () => {
    await berth("deploy", "--name", "cli-twice", "--image", IMAGE, "--port", "8080");

    const result = await berth("deploy", "--name", "cli-twice", "--image", IMAGE, "--port", "8080");

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("(code name_taken). Choose another --name");
  });

  test("missing image exits 1", async () => {
    agent.mode = "image_not_found";
    try {
      const result = await berth("deploy", "--name", "cli-imageless", "--image", IMAGE, "--port", "8080");

      expect(result.code).toBe(1);
      expect(result.stderr).toContain("(code image_not_found)");
    } finally {
      agent.mode = "ok";
    }
  });

  test("no-wait accepts a slow deploy", { timeout: 30_000 }, async () => {
    agent.mode = "hang";
    try {
      const result = await berth("deploy", "--name", "cli-slow", "--image", IMAGE, "--port", "8080", "--no-wait", "--json");

      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout).in_progress).toBe(true);
    } finally {
      agent.mode = "ok";
    }
  });

  test("wait times out with exit 1", { timeout: 30_000 }, async () => {
    agent.mode = "hang";
    try {
      const result = await berth("deploy", "--name", "cli-stuck", "--image", IMAGE, "--port", "8080", "--timeout", "2");

      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^error: timed out after 2s waiting for instance cli-stuck \([0-9a-f]{8}\) to become running/);
    } finally {
      agent.mode = "ok";
    }
  });

  test("events prints the history", async () => {
    await berth("deploy", "--name", "cli-evented", "--image", IMAGE, "--port", "8080");
    await berth("stop", "cli-evented");

    const result = await berth("events", "cli-evented");

    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^TIME\s+INSTANCE\s+STATUS\s+ACTOR\s+REASON\s+MESSAGE$/);
    expect(lines).toHaveLength(6);
    expect(lines[1]).toContain("(new) → pending");
    expect(lines[1]).toContain("Created");
    expect(lines[5]).toContain("stopping → stopped");
  });

  test("events --json is oldest first", async () => {
    await berth("deploy", "--name", "cli-evented-json", "--image", IMAGE, "--port", "8080");

    const result = await berth("events", "cli-evented-json", "--limit", "2", "--json");

    expect(result.code).toBe(0);
    const { events } = JSON.parse(result.stdout);
    expect(events.map((event: { to_status: string }) => event.to_status)).toEqual(["deploying", "running"]);
    expect(events[0].id).toBeLessThan(events[1].id);
  });

  test("events without instance merges all", async () => {
    const listed = JSON.parse((await berth("ls", "--json")).stdout).instances.map((instance: { id: string }) => instance.id);

    const all = await berth("events", "--limit", "1000", "--json");
    const newest = await berth("events", "--limit", "4", "--json");

    expect(all.code).toBe(0);
    expect(newest.code).toBe(0);
    const allEvents: Array<{ id: number; instance_id: string }> = JSON.parse(all.stdout).events;
    const allIds = allEvents.map((event) => event.id);
    expect(allIds).toEqual([...allIds].sort((a, b) => a - b));
    expect(new Set(allEvents.map((event) => event.instance_id))).toEqual(new Set(listed));
    expect(JSON.parse(newest.stdout).events.map((event: { id: number }) => event.id)).toEqual(allIds.slice(-4));
  });

  test("events of unknown id exits 3", async () => {
    const id = randomUUID();

    const result = await berth("events", id);

    expect(result.code).toBe(3);
    expect(result.stderr).toBe(`error: instance ${id.slice(0, 8)}… not found (code instance_not_found). Run \`berth ls\` to see your instances.\n`);
  });

  test("reconcile runs with the service key", { timeout: 60_000 }, async () => {
    const result = await berth("reconcile", "--json");

    expect(JSON.parse(result.stdout).status).toMatch(/^(succeeded|partial|skipped)$/);
    expect(result.code).toBe(JSON.parse(result.stdout).status === "partial" ? 1 : 0);
  });

  test("reconcile without service key exits 2", async () => {
    const { SUPABASE_SERVICE_ROLE_KEY: _key, ...withoutKey } = env;

    const result = await runBerth(["reconcile"], withoutKey, cwd);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain("SUPABASE_SERVICE_ROLE_KEY is missing in the environment");
  });

  test("expired token exits 1", async () => {
    const expired = await mintUserJwt(randomUUID(), undefined, { expiresInSeconds: -60 });

    const result = await runBerth(["ls"], { ...env, BERTH_USER_JWT: expired }, cwd);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("(code unauthorized)");
  });
});

import type { InstanceResponse } from "@berth/shared";
import { describe, expect, test } from "vitest";
import type { BerthClient } from "../../src/client.ts";
import type { CommandContext } from "../../src/cli/context.ts";
import { CliError, ExitCode } from "../../src/cli/exit.ts";
import { settleAction } from "../../src/cli/settle.ts";
import { startSpinner } from "../../src/cli/spinner.ts";
import { BerthError } from "../../src/errors.ts";

const NOW = new Date("2026-01-05T12:00:00Z");

function instance(overrides: Partial<InstanceResponse>): InstanceResponse {
  return {
    id: "3f2a9c1e-1111-4222-8333-444455556666",
    toolbox_id: "7d1e0000-1111-4222-8333-444455556666",
    name: "search",
    image: "ghcr.io/example/search:1",
    command: null,
    env: {},
    secret_names: [],
    container_port: 8080,
    host_port: 30001,
    mcp_transport: "streamable_http",
    mcp_path: "/mcp",
    endpoint: "http://203.0.113.7:30001/mcp",
    desired_state: "running",
    generation: 1,
    spec_generation: 1,
    status: "deploying",
    status_reason_code: "DeployRequested",
    status_reason: null,
    status_changed_at: "2026-01-05T11:59:00Z",
    container_id: null,
    docker_state: null,
    exit_code: null,
    oom_killed: null,
    restart_count: null,
    health: null,
    observed_generation: null,
    started_at: null,
    finished_at: null,
    observed_at: null,
    lease_expires_at: null,
    version: 1,
    created_at: "2026-01-05T11:59:00Z",
    updated_at: "2026-01-05T11:59:00Z",
    ...overrides,
  };
}

/** A client whose GET /instances/{id} returns `reads` in order, then keeps returning the last. */
function clientReading(reads: Array<InstanceResponse | BerthError>): BerthClient {
  let index = 0;
  const get = async () => {
    const next = reads[Math.min(index, reads.length - 1)];
    index += 1;
    if (next instanceof BerthError) throw next;
    return next as InstanceResponse;
  };
  return { instances: { get } } as unknown as BerthClient;
}

function context(json = false): { context: CommandContext; stdout: string[] } {
  const stdout: string[] = [];
  const io = { stdout: { write: (text: string) => stdout.push(text) }, stderr: { write: () => true }, env: {}, cwd: "/", now: () => NOW };
  const ctx = { io, json, print: (text: string) => stdout.push(text) } as unknown as CommandContext;
  return { context: ctx, stdout };
}

const WAIT = { expected: "running", done: "deployed", wait: true, timeoutMs: 5000, pollIntervalMs: 10 } as const;

describe("settleAction", () => {
  test("waits until running", async () => {
    const { context: ctx, stdout } = context();
    const client = clientReading([instance({ status: "deploying" }), instance({ status: "running", status_reason_code: "ContainerRunning" })]);

    const code = await settleAction(ctx, client, { instance: instance({}), inProgress: true }, { ...WAIT });

    expect(code).toBe(ExitCode.ok);
    expect(stdout[0]).toBe("deployed search (3f2a9c1e): running\n");
  });

  test("failed instance is exit 1", async () => {
    const { context: ctx } = context();
    const failed = instance({ status: "failed", status_reason_code: "ImageNotFound", status_reason: "image ghcr.io/example/search:1 not found" });

    const error = await settleAction(ctx, clientReading([failed]), { instance: instance({}), inProgress: true }, { ...WAIT }).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(ExitCode.failed);
    expect((error as CliError).code).toBe("instance_failed");
    expect((error as CliError).message).toBe(
      "instance search (3f2a9c1e) is failed (reason ImageNotFound), not running: image ghcr.io/example/search:1 not found. Run `berth events 3f2a9c1e` for its history.",
    );
  });

  test("timeout is exit 1", async () => {
    const { context: ctx } = context();

    const error = await settleAction(ctx, clientReading([instance({ status: "deploying" })]), { instance: instance({}), inProgress: true }, { ...WAIT, timeoutMs: 50 }).catch(
      (caught: unknown) => caught,
    );

    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).code).toBe("timed_out");
    expect((error as CliError).message).toMatch(/^timed out after 0s waiting for instance search \(3f2a9c1e\) to become running; it is deploying \(DeployRequested\)/);
  });

  test("removed row that vanishes is success", async () => {
    const { context: ctx, stdout } = context();
    const gone = new BerthError("instance_not_found", 404, "instance not found");

    const code = await settleAction(ctx, clientReading([gone]), { instance: instance({ status: "removing", desired_state: "removed" }), inProgress: true }, { ...WAIT, expected: "removed", done: "removed" });

    expect(code).toBe(ExitCode.ok);
    expect(stdout[0]).toBe("removed search (3f2a9c1e)\n");
  });

  test("no-wait reports in progress", async () => {
    const { context: ctx, stdout } = context(true);

    const code = await settleAction(ctx, clientReading([]), { instance: instance({ status: "deploying" }), inProgress: true }, { ...WAIT, wait: false });

    expect(code).toBe(ExitCode.ok);
    expect(JSON.parse(stdout.join(""))).toMatchObject({ in_progress: true, instance: { status: "deploying" } });
  });

  test("other errors propagate", async () => {
    const { context: ctx } = context();
    const unreachable = new BerthError("network_error", 0, "no response");

    const error = await settleAction(ctx, clientReading([unreachable]), { instance: instance({}), inProgress: true }, { ...WAIT }).catch((caught: unknown) => caught);

    expect(error).toBe(unreachable);
  });
});

describe("startSpinner", () => {
  test("draws nothing without a terminal", () => {
    const written: string[] = [];
    const spinner = startSpinner({ write: (text) => written.push(text), isTTY: false }, "waiting");

    spinner.update("still waiting");
    spinner.stop();

    expect(written).toEqual([]);
  });

  test("draws and clears on a terminal", () => {
    const written: string[] = [];
    const spinner = startSpinner({ write: (text) => written.push(text), isTTY: true }, "waiting");

    spinner.stop();

    expect(written[0]).toMatch(/^\r\u001b\[K. waiting$/u);
    expect(written.at(-1)).toBe("\r\u001b[K");
  });
});

import postgres from "postgres";
import { beforeAll, describe, expect, test } from "vitest";
import { SQLSTATE } from "../../packages/shared/src/index.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { createInstance, createToolbox, insertInstanceInStatus, readInstance, sqlError, type ToolboxRow } from "./fixtures.ts";

const getDb = useTestDatabase();

let ownerId: string;

beforeAll(async () => {
  const { sql } = getDb();
  ownerId = await createUser(sql);
});

async function readToolbox(id: string): Promise<ToolboxRow> {
  const { sql } = getDb();
  const [row] = await sql<ToolboxRow[]>`select * from public.toolboxes where id = ${id}`;
  return row!;
}

async function recordFailure(id: string, threshold = 3): Promise<ToolboxRow> {
  const { sql } = getDb();
  const [row] = await sql<ToolboxRow[]>`select * from berth_private.record_toolbox_failure(${id}, 'connect ECONNREFUSED', ${threshold})`;
  return row!;
}

describe("toolbox contact", () => {
  test("heartbeat activates a new toolbox", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId);
    const [row] = await sql<(ToolboxRow & { agent_version: string })[]>`
      select * from berth_private.record_toolbox_heartbeat(${toolbox.id}, '1.2.3')`;

    expect(toolbox.status).toBe("provisioning");
    expect(row!.status).toBe("active");
    expect(row!.agent_version).toBe("1.2.3");
    expect(row!.last_heartbeat_at).not.toBeNull();
  });

  test("failures below the threshold change no status", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId);
    await sql`select berth_private.record_toolbox_heartbeat(${toolbox.id})`;
    const row = await recordFailure(toolbox.id);

    expect(row.consecutive_failures).toBe(1);
    expect(row.status).toBe("active");
  });

  test("threshold marks toolbox unreachable, instances unknown", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId);
    await sql`select berth_private.record_toolbox_heartbeat(${toolbox.id})`;
    const running = await insertInstanceInStatus(sql, ownerId, toolbox.id, "running", 30101);
    const stopped = await insertInstanceInStatus(sql, ownerId, toolbox.id, "stopped", 30102);
    const pending = await insertInstanceInStatus(sql, ownerId, toolbox.id, "pending", 30103);

    for (let failure = 0; failure < 3; failure += 1) await recordFailure(toolbox.id);

    expect((await readToolbox(toolbox.id)).status).toBe("unreachable");
    expect((await readInstance(sql, running.id)).status).toBe("unknown");
    expect((await readInstance(sql, stopped.id)).status).toBe("unknown");
    expect((await readInstance(sql, pending.id)).status).toBe("pending");
    const [event] = await sql<{ actor: string; reason_code: string; from_status: string }[]>`
      select actor, reason_code, from_status from public.instance_events where instance_id = ${running.id} and to_status = 'unknown'`;
    expect(event!.actor).toBe("reconciler");
    expect(event!.reason_code).toBe("HostUnreachable");
    expect(event!.from_status).toBe("running");
  });

  test("heartbeat after unreachable reactivates", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId);
    await recordFailure(toolbox.id, 1);
    const [row] = await sql<ToolboxRow[]>`select * from berth_private.record_toolbox_heartbeat(${toolbox.id})`;

    expect(row!.status).toBe("active");
    expect(row!.consecutive_failures).toBe(0);
  });

  test("draining toolbox stays draining when unreachable", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId);
    await sql`select berth_private.set_toolbox_status(${toolbox.id}, 'draining')`;
    const row = await recordFailure(toolbox.id, 1);

    expect(row.status).toBe("draining");
  });
});

describe("toolbox lifecycle", () => {
  test("token rotation bumps the version", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId);
    const [row] = await sql<ToolboxRow[]>`select * from berth_private.rotate_toolbox_token(${toolbox.id})`;

    expect(row!.token_version).toBe(toolbox.token_version + 1);
  });

  test("decommission with live instances is rejected", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId);
    await createInstance(sql, ownerId, toolbox.id);
    const error = await sqlError(sql`select berth_private.decommission_toolbox(${toolbox.id})`);

    expect(error.code).toBe(SQLSTATE.toolboxNotEmpty);
    expect((await readToolbox(toolbox.id)).status).toBe("provisioning");
  });

  test("decommission after removal succeeds", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId);
    const instance = await createInstance(sql, ownerId, toolbox.id);
    await sql`update public.tool_instances set status = 'removed', status_reason_code = 'ContainerRemoved' where id = ${instance.id}`;
    const [row] = await sql<ToolboxRow[]>`select * from berth_private.decommission_toolbox(${toolbox.id})`;

    expect(row!.status).toBe("decommissioned");
  });

  test("decommissioned toolbox rejects heartbeats", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId);
    await sql`select berth_private.decommission_toolbox(${toolbox.id})`;
    const error = await sqlError(sql`select berth_private.record_toolbox_heartbeat(${toolbox.id})`);

    expect(error.code).toBe(SQLSTATE.toolboxUnavailable);
  });

  test("decommissioned name is reusable", async () => {
    const { sql } = getDb();
    const first = await createToolbox(sql, ownerId, { name: "reborn" });
    await sql`select berth_private.decommission_toolbox(${first.id})`;
    const second = await createToolbox(sql, ownerId, { name: "reborn" });

    expect(second.id).not.toBe(first.id);
  });

  test("unknown toolbox raises not found", async () => {
    const { sql } = getDb();
    const error = await sqlError(sql`select berth_private.rotate_toolbox_token(gen_random_uuid())`);

    expect(error.code).toBe(SQLSTATE.toolboxNotFound);
  });
});

describe("reconciler bookkeeping", () => {
  test("concurrent passes claim disjoint toolboxes", async () => {
    const { sql, url } = getDb();
    const owner = await createUser(sql);
    const ids = new Set<string>();
    for (let index = 0; index < 6; index += 1) ids.add((await createToolbox(sql, owner)).id);
    const clients = [postgres(url, { max: 1, onnotice: () => {} }), postgres(url, { max: 1, onnotice: () => {} })];

    try {
      const batches = await Promise.all(
        clients.map((client, index) =>
          client.begin(async (tx) => {
            const rows = await tx<{ id: string }[]>`select id from berth_private.claim_toolboxes_for_reconcile(${`pass-${index}`}, 100, 60)`;
            await tx`select pg_sleep(0.1)`;
            return rows.map((row) => row.id).filter((id) => ids.has(id));
          }),
        ),
      );
      const claimed = [...batches[0]!, ...batches[1]!];

      expect(new Set(claimed).size).toBe(claimed.length);
      expect(new Set(claimed)).toEqual(ids);
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  });

  test("leased toolbox is skipped until finished", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId);
    const first = await sql<{ id: string }[]>`select id from berth_private.claim_toolboxes_for_reconcile('pass-a', 1000, 60)`;
    const second = await sql<{ id: string }[]>`select id from berth_private.claim_toolboxes_for_reconcile('pass-b', 1000, 60)`;
    const [wrongHolder] = await sql<{ done: boolean }[]>`select berth_private.finish_toolbox_reconcile(${toolbox.id}, 'pass-b') as done`;
    const [rightHolder] = await sql<{ done: boolean }[]>`select berth_private.finish_toolbox_reconcile(${toolbox.id}, 'pass-a') as done`;

    expect(first.map((row) => row.id)).toContain(toolbox.id);
    expect(second.map((row) => row.id)).not.toContain(toolbox.id);
    expect(wrongHolder!.done).toBe(false);
    expect(rightHolder!.done).toBe(true);
    expect((await readToolbox(toolbox.id)).reconcile_lease_holder).toBeNull();
  });

  test("reconcile run records counts and duration", async () => {
    const { sql } = getDb();
    const [run] = await sql<{ id: string; status: string }[]>`select * from berth_private.start_reconcile_run('pass-c')`;
    await sql`select pg_sleep(0.02)`;
    const [finished] = await sql<{ status: string; duration_ms: number; repairs_made: number; errors: unknown[] }[]>`
      select * from berth_private.finish_reconcile_run(${run!.id}, 'partial', 3, 10, 2, 1, 1, ${sql.json([{ toolbox_id: "x", code: "agent_unreachable" }])})`;

    expect(run!.status).toBe("running");
    expect(finished!.status).toBe("partial");
    expect(finished!.duration_ms).toBeGreaterThanOrEqual(20);
    expect(finished!.repairs_made).toBe(1);
    expect(finished!.errors).toHaveLength(1);
  });

  test("finished run cannot finish again", async () => {
    const { sql } = getDb();
    const [run] = await sql<{ id: string }[]>`select * from berth_private.start_reconcile_run('pass-d')`;
    await sql`select berth_private.finish_reconcile_run(${run!.id}, 'succeeded', 0, 0, 0, 0, 0)`;
    const error = await sqlError(sql`select berth_private.finish_reconcile_run(${run!.id}, 'succeeded', 0, 0, 0, 0, 0)`);

    expect(error.code).toBe(SQLSTATE.reconcileRunNotFound);
  });

  test("negative count is rejected by column", async () => {
    const { sql } = getDb();
    const [run] = await sql<{ id: string }[]>`select * from berth_private.start_reconcile_run('pass-e')`;
    const error = await sqlError(sql`select berth_private.finish_reconcile_run(${run!.id}, 'succeeded', -1, 0, 0, 0, 0)`);

    expect(error.code).toBe(SQLSTATE.invalidParameterValue);
    expect(error.constraint_name).toBe("reconcile_runs_counts_non_negative");
  });
});

describe("idempotency keys", () => {
  test("completed request replays its response", async () => {
    const { sql } = getDb();
    const [started] = await sql<{ completed_at: Date | null }[]>`select * from berth_private.begin_idempotent_request(${ownerId}, 'key-1', 'hash-a')`;
    await sql`select berth_private.complete_idempotent_request(${ownerId}, 'key-1', 201, ${sql.json({ id: "abc" })})`;
    const [replayed] = await sql<{ response_status: number; response: { id: string } }[]>`
      select * from berth_private.begin_idempotent_request(${ownerId}, 'key-1', 'hash-a')`;

    expect(started!.completed_at).toBeNull();
    expect(replayed!.response_status).toBe(201);
    expect(replayed!.response).toEqual({ id: "abc" });
  });

  test("key reused for another request is rejected", async () => {
    const { sql } = getDb();
    await sql`select berth_private.begin_idempotent_request(${ownerId}, 'key-2', 'hash-a')`;
    const error = await sqlError(sql`select berth_private.begin_idempotent_request(${ownerId}, 'key-2', 'hash-b')`);

    expect(error.code).toBe(SQLSTATE.idempotencyKeyReused);
  });

  test("request in progress is rejected", async () => {
    const { sql } = getDb();
    await sql`select berth_private.begin_idempotent_request(${ownerId}, 'key-3', 'hash-a')`;
    const error = await sqlError(sql`select berth_private.begin_idempotent_request(${ownerId}, 'key-3', 'hash-a')`);

    expect(error.code).toBe(SQLSTATE.requestInProgress);
  });

  test("stale request may be retried", async () => {
    const { sql } = getDb();
    await sql`select berth_private.begin_idempotent_request(${ownerId}, 'key-4', 'hash-a')`;
    await sql`update berth_private.idempotency_keys set created_at = now() - interval '10 minutes' where key = 'key-4'`;
    const [retried] = await sql<{ completed_at: Date | null }[]>`
      select * from berth_private.begin_idempotent_request(${ownerId}, 'key-4', 'hash-a')`;

    expect(retried!.completed_at).toBeNull();
  });
});

import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ReconcileResponse, ReconcileRunResponse, ReconcileSkippedResponse } from "../../packages/shared/src/index.ts";
import { LOCAL_JWT_SECRET, mintServiceRoleKey, mintUserJwt } from "../../stack/jwt.ts";
import { createAuthenticator } from "../../supabase/functions/_shared/auth.ts";
import { createLogger } from "../../supabase/functions/_shared/log.ts";
import { createReconcileHandler } from "../../supabase/functions/reconcile/handler.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { createReconciler } from "./support.ts";

const getDb = useTestDatabase();
let ownerId: string;
let slowAgent: http.Server;

beforeAll(async () => {
  ownerId = await createUser(getDb().sql);
  slowAgent = await startSlowAgent(500);
  const url = `http://127.0.0.1:${(slowAgent.address() as AddressInfo).port}`;
  await getDb().sql`select berth_private.create_toolbox(${ownerId}, 'slow', ${url})`;
});

afterAll(async () => {
  await new Promise((resolve) => slowAgent?.close(resolve));
});

/** Serves an empty inventory after `delayMs`, so a pass lasts long enough to overlap another. */
async function startSlowAgent(delayMs: number): Promise<http.Server> {
  const server = http.createServer((_request, response) => {
    setTimeout(() => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ agent_version: "slow", engine_version: "none", instances: [] }));
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

function createHandler() {
  const reconciler = createReconciler(getDb().sql);
  const auth = createAuthenticator({ supabaseUrl: "http://127.0.0.1:1", jwtSecret: LOCAL_JWT_SECRET });
  return createReconcileHandler({ auth, pass: reconciler.pass, logger: createLogger({}, () => {}) });
}

function reconcileRequest(token: string | null, method = "POST"): Request {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return new Request("http://functions.local/reconcile", { method, headers, body: method === "POST" ? JSON.stringify({ source: "test" }) : undefined });
}

describe("reconcile handler", () => {
  test("service role runs a pass", async () => {
    const response = await createHandler()(reconcileRequest(await mintServiceRoleKey()));
    const body = ReconcileRunResponse.parse(await response.json());

    expect(response.status).toBe(200);
    expect(body.status).toBe("succeeded");
    expect(body.complete).toBe(true);
  });

  test("user token is forbidden", async () => {
    const response = await createHandler()(reconcileRequest(await mintUserJwt(ownerId)));

    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("forbidden");
  });

  test("missing token is unauthorized", async () => {
    const response = await createHandler()(reconcileRequest(null));

    expect(response.status).toBe(401);
  });

  test("GET is not allowed", async () => {
    const response = await createHandler()(reconcileRequest(await mintServiceRoleKey(), "GET"));

    expect(response.status).toBe(405);
  });
});

describe("run lease", () => {
  test("overlapping passes: one skips", async () => {
    const { sql } = getDb();
    const handler = createHandler();
    const key = await mintServiceRoleKey();
    const [runsBefore] = await sql<{ count: number }[]>`select count(*)::int as count from public.reconcile_runs`;

    const responses = await Promise.all([handler(reconcileRequest(key)), handler(reconcileRequest(key))]);
    const bodies = await Promise.all(responses.map(async (response) => ReconcileResponse.parse(await response.json())));
    const ran = bodies.filter((body) => body.status !== "skipped");
    const skipped = bodies.filter((body) => body.status === "skipped").map((body) => ReconcileSkippedResponse.parse(body));
    const [runsAfter] = await sql<{ count: number }[]>`select count(*)::int as count from public.reconcile_runs`;

    expect(ran).toHaveLength(1);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.holder).toBe((ran[0] as ReconcileRunResponse).holder);
    expect(runsAfter!.count - runsBefore!.count).toBe(1);
  });

  test("skipped pass writes nothing", async () => {
    const { sql } = getDb();
    const [held] = await sql<{ run_id: string }[]>`select run_id from berth_private.begin_reconcile_run('holder-a', 60, 1)`;
    const [before] = await sql<{ runs: number; toolboxes: string }[]>`
      select (select count(*)::int from public.reconcile_runs) as runs,
             (select coalesce(max(updated_at)::text, '') from public.toolboxes) as toolboxes`;

    const body = ReconcileResponse.parse(await createReconciler(sql).pass.run());
    const [after] = await sql<{ runs: number; toolboxes: string }[]>`
      select (select count(*)::int from public.reconcile_runs) as runs,
             (select coalesce(max(updated_at)::text, '') from public.toolboxes) as toolboxes`;

    expect(body).toMatchObject({ status: "skipped", holder: "holder-a" });
    expect(after).toEqual(before);
    await sql`select berth_private.finish_reconcile_run(${held!.run_id}, 'succeeded', 0, 0, 0, 0, 0)`;
  });

  test("expired run lease is taken over", async () => {
    const { sql } = getDb();
    const [stale] = await sql<{ run_id: string }[]>`select run_id from berth_private.begin_reconcile_run('holder-crashed', 1, 1)`;
    await sql`update public.reconcile_runs set lease_expires_at = now() - interval '1 second' where id = ${stale!.run_id}`;

    const body = ReconcileResponse.parse(await createReconciler(sql).pass.run());
    const [closed] = await sql<{ status: string; errors: { code: string }[] }[]>`
      select status, errors from public.reconcile_runs where id = ${stale!.run_id}`;

    expect(body.status).toBe("succeeded");
    expect(closed!.status).toBe("failed");
    expect(closed!.errors.map((error) => error.code)).toEqual(["lease_expired"]);
  });

  test("passes split a fleet", async () => {
    const { sql } = getDb();
    for (let index = 0; index < 6; index += 1) {
      await sql`select berth_private.create_toolbox(${ownerId}, ${`split-${index}`}, 'http://127.0.0.1:9')`;
    }
    const [first] = await sql<{ run_id: string }[]>`select run_id from berth_private.begin_reconcile_run('split-a', 60, 2)`;
    const [second] = await sql<{ run_id: string }[]>`select run_id from berth_private.begin_reconcile_run('split-b', 60, 2)`;

    const claimedByA = await sql<{ id: string }[]>`select id from berth_private.claim_reconcile_batch(${first!.run_id}, 'split-a', 4, 60)`;
    const claimedByB = await sql<{ id: string }[]>`select id from berth_private.claim_reconcile_batch(${second!.run_id}, 'split-b', 4, 60)`;
    const overlap = claimedByA.filter((row) => claimedByB.some((other) => other.id === row.id));

    expect(claimedByA).toHaveLength(4);
    expect(claimedByB.length).toBeGreaterThanOrEqual(2);
    expect(overlap).toEqual([]);
    await sql`select berth_private.finish_reconcile_run(${first!.run_id}, 'succeeded', 0, 0, 0, 0, 0)`;
    await sql`select berth_private.finish_reconcile_run(${second!.run_id}, 'succeeded', 0, 0, 0, 0, 0)`;
  });
});

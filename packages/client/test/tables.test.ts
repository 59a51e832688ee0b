// Table reads go through the Data API (PostgREST), which does not run in this test stack. These
// tests fake it at the HTTP edge with a stand-in that runs each query against a real migrated
// database under the caller's JWT. Row level security, grants and PostgreSQL's JSON output are
// therefore real, and only PostgREST's query parsing is imitated.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createBerthClient, type BerthClient } from "../src/index.ts";
import { BerthError } from "../src/errors.ts";
import { createNodeSupabaseClient } from "../src/cli/connect.ts";
import { startGateway, type Gateway } from "../../../stack/gateway.ts";
import { LOCAL_JWT_SECRET, mintAnonKey, mintUserJwt } from "../../../stack/jwt.ts";
import { freePort } from "../../../stack/net.ts";
import { createUser, useTestDatabase } from "../../../tests/support/db.ts";
import { createInstance, createToolbox, insertInstanceInStatus } from "../../../tests/db/fixtures.ts";
import { startPostgrestStandIn, type PostgrestStandIn } from "./support/postgrest-stand-in.ts";

describe("table reads through a PostgREST stand-in", () => {
  const db = useTestDatabase();
  let standIn: PostgrestStandIn;
  let anonKey: string;
  let userToken: string;
  let berth: BerthClient;
  const ids = { owner: "", other: "", box: "", secondBox: "", otherBox: "", first: "", second: "", removed: "", foreign: "" };

  beforeAll(async () => {
    const { sql } = db();
    ids.owner = await createUser(sql);
    ids.other = await createUser(sql);
    ids.box = (await createToolbox(sql, ids.owner, { name: "alpha" })).id;
    ids.secondBox = (await createToolbox(sql, ids.owner, { name: "beta" })).id;
    ids.otherBox = (await createToolbox(sql, ids.other, { name: "alpha" })).id;
    ids.first = (await createInstance(sql, ids.owner, ids.box, { name: "first", env: { MODE: "fast" }, secrets: { API_KEY: "s3cr3t" } })).id;
    ids.second = (await createInstance(sql, ids.owner, ids.secondBox, { name: "second" })).id;
    ids.removed = (await insertInstanceInStatus(sql, ids.owner, ids.box, "removed", 30500)).id;
    ids.foreign = (await createInstance(sql, ids.other, ids.otherBox, { name: "foreign" })).id;

    standIn = await startPostgrestStandIn(sql);
    anonKey = await mintAnonKey();
    userToken = await mintUserJwt(ids.owner);
    berth = createBerthClient(createNodeSupabaseClient(standIn.url, anonKey, userToken));
  });

  afterAll(async () => {
    await standIn?.stop();
  });

  test("instances lists own live rows", async () => {
    const rows = await berth.tables.instances();

    expect(rows.map((row) => row.id)).toEqual([ids.first, ids.second]);
    expect(rows[0]?.name).toBe("first");
    expect(rows[0]?.env).toEqual({ MODE: "fast" });
    expect(rows[0]?.secret_names).toEqual(["API_KEY"]);
    expect(typeof rows[0]?.generation).toBe("number");
  });

  test("instances sends token, key and column list", async () => {
    standIn.requests.length = 0;
    await berth.tables.instances();

    const request = standIn.requests[0];
    expect(request?.path).toBe("/rest/v1/tool_instances");
    expect(request?.headers.authorization).toBe(`Bearer ${userToken}`);
    expect(request?.headers.apikey).toBe(anonKey);
    expect(request?.query.get("status")).toBe("neq.removed");
    expect(request?.query.get("select")).toContain("status_reason_code");
    expect(request?.query.get("select")).not.toContain("lease_nonce");
  });

  test("instances leaves out lease proof", async () => {
    const [row] = await berth.tables.instances();

    expect(row).toBeDefined();
    expect(Object.keys(row ?? {})).not.toContain("lease_nonce");
    expect(Object.keys(row ?? {})).not.toContain("lease_holder");
    expect(Object.keys(row ?? {})).toContain("lease_expires_at");
  });

  test("instances filters by toolbox", async () => {
    const rows = await berth.tables.instances({ toolboxId: ids.secondBox });

    expect(rows.map((row) => row.id)).toEqual([ids.second]);
  });

  test("instances includes removed on request", async () => {
    const rows = await berth.tables.instances({ includeRemoved: true });

    expect(rows.map((row) => row.id).sort()).toEqual([ids.first, ids.second, ids.removed].sort());
  });

  test("instance returns one row", async () => {
    const row = await berth.tables.instance(ids.first);

    expect(row?.id).toBe(ids.first);
    expect(row?.status).toBe("pending");
  });

  test("instance of another owner is null", async () => {
    const row = await berth.tables.instance(ids.foreign);

    expect(row).toBeNull();
  });

  test("toolboxes lists own rows", async () => {
    const rows = await berth.tables.toolboxes();

    expect(rows.map((row) => row.name)).toEqual(["alpha", "beta"]);
    expect(rows.every((row) => row.owner_id === ids.owner)).toBe(true);
  });

  test("events returns newest first", async () => {
    const { sql } = db();
    // Each status change appends an event through the table's trigger.
    await sql`update public.tool_instances set status = 'deploying' where id = ${ids.first}`;
    await sql`update public.tool_instances set status = 'running' where id = ${ids.first}`;

    const events = await berth.tables.events({ instanceId: ids.first });

    expect(events.map((event) => event.to_status)).toEqual(["running", "deploying", "pending"]);
    expect(events.map((event) => event.from_status)).toEqual(["deploying", "pending", null]);
    expect(events.every((event) => event.instance_id === ids.first)).toBe(true);
    expect(typeof events[0]?.id).toBe("number");
  });

  test("events hides other owners", async () => {
    const events = await berth.tables.events({ limit: 1000 });

    expect(events.length).toBeGreaterThan(0);
    expect(events.some((event) => event.instance_id === ids.foreign)).toBe(false);
  });

  test("events applies limit and cursor", async () => {
    const all = await berth.tables.events();
    const newest = all[0];
    expect(newest).toBeDefined();

    const page = await berth.tables.events({ limit: 1, beforeId: newest?.id });

    expect(page).toHaveLength(1);
    expect(page[0]?.id).toBeLessThan(newest?.id ?? 0);
  });

  test("events rejects invalid limit", async () => {
    standIn.requests.length = 0;

    const error = await berth.tables.events({ limit: 0 }).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(BerthError);
    expect((error as BerthError).code).toBe("invalid_request");
    expect(standIn.requests).toHaveLength(0);
  });

  test("rejected token is data_api_error", async () => {
    const expired = await mintUserJwt(ids.owner, undefined, { expiresInSeconds: -60 });
    const client = createBerthClient(createNodeSupabaseClient(standIn.url, anonKey, expired));

    const error = await client.tables.instances().catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(BerthError);
    expect((error as BerthError).code).toBe("data_api_error");
    expect((error as BerthError).status).toBe(401);
    expect((error as BerthError).message).toContain("tool_instances");
  });

  test("anon key reads nothing", async () => {
    const client = createBerthClient(createNodeSupabaseClient(standIn.url, anonKey, anonKey));

    const error = await client.tables.toolboxes().catch((caught: unknown) => caught);

    // anon has no select grant on the registry tables, so PostgreSQL raises 42501.
    expect(error).toBeInstanceOf(BerthError);
    expect((error as BerthError).status).toBe(403);
    expect((error as BerthError).details).toMatchObject({ postgrest_code: "42501" });
  });
});

describe("table reads without a Data API", () => {
  let gateway: Gateway;

  beforeAll(async () => {
    // The local stack's gateway serves only /functions/v1, like `npm start`.
    gateway = await startGateway({ port: await freePort(), routes: [], jwtSecret: LOCAL_JWT_SECRET });
  });

  afterAll(async () => {
    await gateway?.stop();
  });

  test("missing Data API is a 404", async () => {
    const token = await mintUserJwt("0b5a3c2e-1111-4222-8333-444455556666");
    const client = createBerthClient(createNodeSupabaseClient(gateway.url, await mintAnonKey(), token));

    const error = await client.tables.instances().catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(BerthError);
    expect((error as BerthError).code).toBe("data_api_error");
    expect((error as BerthError).status).toBe(404);
  });
});

// Supabase Realtime does not run in this test stack, so these tests fake it at the WebSocket edge
// with a stand-in that speaks its Phoenix channel protocol. They check what the client sends
// (topic, table, filter, access token) and how it turns a delivered change into an InstanceChange.
// Filtering rows by owner is Realtime's job and is not exercised here.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { createBerthClient, type BerthClient, type InstanceChange, type WatchStatus } from "../src/index.ts";
import { createNodeSupabaseClient } from "../src/cli/connect.ts";
import { mintAnonKey, mintUserJwt } from "../../../stack/jwt.ts";
import { startRealtimeStandIn, type ChangeData, type RealtimeStandIn } from "./support/realtime-stand-in.ts";

const INSTANCE_ID = "6f1c2d3e-4a5b-4c6d-8e7f-001122334455";
const TOOLBOX_ID = "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3";

describe("watch through a Realtime stand-in", () => {
  let realtime: RealtimeStandIn;
  let userToken: string;
  let berth: BerthClient;
  const unsubscribes: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    realtime = await startRealtimeStandIn();
    userToken = await mintUserJwt(randomUUID());
    berth = createBerthClient(createNodeSupabaseClient(realtime.url, await mintAnonKey(), userToken));
  });

  afterEach(async () => {
    for (const unsubscribe of unsubscribes.splice(0)) await unsubscribe();
  });

  afterAll(async () => {
    await realtime?.stop();
  });

  test("joins tool_instances changes", async () => {
    const joinsBefore = realtime.joins.length;
    unsubscribes.push(berth.watch(() => {}));
    await realtime.waitForJoins(joinsBefore + 1);

    const join = realtime.joins.at(-1);
    expect(join?.topic).toMatch(/^realtime:berth-instances-/);
    expect(join?.payload.config.postgres_changes).toEqual([{ event: "*", schema: "public", table: "tool_instances" }]);
    expect(join?.payload.access_token).toBe(userToken);
  });

  test("toolbox option sets filter", async () => {
    const joinsBefore = realtime.joins.length;
    unsubscribes.push(berth.watch(() => {}, { toolboxId: TOOLBOX_ID }));
    await realtime.waitForJoins(joinsBefore + 1);

    expect(realtime.joins.at(-1)?.payload.config.postgres_changes[0]?.filter).toBe(`toolbox_id=eq.${TOOLBOX_ID}`);
  });

  test("instance option sets filter", async () => {
    const joinsBefore = realtime.joins.length;
    unsubscribes.push(berth.watch(() => {}, { instanceId: INSTANCE_ID }));
    await realtime.waitForJoins(joinsBefore + 1);

    expect(realtime.joins.at(-1)?.payload.config.postgres_changes[0]?.filter).toBe(`id=eq.${INSTANCE_ID}`);
  });

  test("both filters are rejected", () => {
    expect(() => berth.watch(() => {}, { toolboxId: TOOLBOX_ID, instanceId: INSTANCE_ID })).toThrow(TypeError);
  });

  test("delivers an update", async () => {
    const changes: InstanceChange[] = [];
    const statuses: WatchStatus[] = [];
    unsubscribes.push(berth.watch((change) => changes.push(change), { onStatus: (status) => statuses.push(status) }));
    await waitFor(() => statuses.includes("SUBSCRIBED"), "the watch to be SUBSCRIBED");

    realtime.pushChange(updateChange());
    await waitFor(() => changes.length === 1, "one change to arrive");

    const change = changes[0];
    expect(change?.type).toBe("UPDATE");
    expect(change?.commitTimestamp).toBe("2026-01-05T10:00:00.123Z");
    expect(change?.instance?.status).toBe("running");
    expect(change?.instance?.generation).toBe(3);
    expect(change?.instance?.env).toEqual({ MODE: "fast" });
    expect(change?.previous).toEqual({ id: INSTANCE_ID });
  });

  test("drops lease proof fields", async () => {
    const changes: InstanceChange[] = [];
    const statuses: WatchStatus[] = [];
    unsubscribes.push(berth.watch((change) => changes.push(change), { onStatus: (status) => statuses.push(status) }));
    await waitFor(() => statuses.includes("SUBSCRIBED"), "the watch to be SUBSCRIBED");

    realtime.pushChange(updateChange());
    await waitFor(() => changes.length === 1, "one change to arrive");

    expect(Object.keys(changes[0]?.instance ?? {})).not.toContain("lease_nonce");
    expect(Object.keys(changes[0]?.instance ?? {})).not.toContain("lease_holder");
  });

  test("delete has no instance", async () => {
    const changes: InstanceChange[] = [];
    const statuses: WatchStatus[] = [];
    unsubscribes.push(berth.watch((change) => changes.push(change), { onStatus: (status) => statuses.push(status) }));
    await waitFor(() => statuses.includes("SUBSCRIBED"), "the watch to be SUBSCRIBED");

    realtime.pushChange({ ...updateChange(), type: "DELETE", record: {} });
    await waitFor(() => changes.length === 1, "one change to arrive");

    expect(changes[0]?.type).toBe("DELETE");
    expect(changes[0]?.instance).toBeNull();
    expect(changes[0]?.previous).toEqual({ id: INSTANCE_ID });
  });

  test("unsubscribe leaves and stops delivery", async () => {
    const changes: InstanceChange[] = [];
    const statuses: WatchStatus[] = [];
    const unsubscribe = berth.watch((change) => changes.push(change), { onStatus: (status) => statuses.push(status) });
    await waitFor(() => statuses.includes("SUBSCRIBED"), "the watch to be SUBSCRIBED");
    const topic = realtime.joins.at(-1)?.topic;

    await unsubscribe();
    await waitFor(() => realtime.leaves.includes(topic ?? ""), "the channel to send phx_leave");
    realtime.pushChange(updateChange());
    await sleep(200);

    expect(changes).toHaveLength(0);
  });
});

/** Builds a change as Realtime sends it for a status update: JSON values, with the column types beside them. */
function updateChange(): ChangeData {
  const record: Record<string, unknown> = {
    id: INSTANCE_ID,
    toolbox_id: TOOLBOX_ID,
    owner_id: "9d8c7b6a-5f4e-4d3c-8b2a-19f8e7d6c5b4",
    name: "search",
    status: "running",
    desired_state: "running",
    generation: 3,
    env: { MODE: "fast" },
    secret_names: ["API_KEY"],
    lease_holder: "instances:request-1",
    lease_nonce: "11111111-2222-4333-8444-555555555555",
    status_changed_at: "2026-01-05T10:00:00.1+00:00",
  };
  const types: Record<string, string> = {
    id: "uuid",
    toolbox_id: "uuid",
    owner_id: "uuid",
    name: "text",
    status: "instance_status",
    desired_state: "desired_state",
    generation: "int8",
    env: "jsonb",
    secret_names: "_text",
    lease_holder: "text",
    lease_nonce: "uuid",
    status_changed_at: "timestamptz",
  };

  return {
    schema: "public",
    table: "tool_instances",
    commit_timestamp: "2026-01-05T10:00:00.123Z",
    type: "UPDATE",
    columns: Object.entries(types).map(([name, type]) => ({ name, type })),
    record,
    old_record: { id: INSTANCE_ID },
    errors: null,
  };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

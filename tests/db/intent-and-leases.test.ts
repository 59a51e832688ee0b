import postgres from "postgres";
import { beforeAll, describe, expect, test } from "vitest";
import { SQLSTATE } from "../../packages/shared/src/index.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { countEvents, createInstance, createToolbox, readInstance, sqlError, type InstanceRow, type ToolboxRow } from "./fixtures.ts";

const getDb = useTestDatabase();

let ownerId: string;
let toolbox: ToolboxRow;

beforeAll(async () => {
  const { sql } = getDb();
  ownerId = await createUser(sql);
  toolbox = await createToolbox(sql, ownerId);
});

async function claim(instanceId: string, holder: string, ttlSeconds = 30): Promise<InstanceRow> {
  const { sql } = getDb();
  const [row] = await sql<InstanceRow[]>`select * from berth_private.claim_instance_lease(${instanceId}, ${holder}, ${ttlSeconds})`;
  return row!;
}

describe("record_intent", () => {
  test("bumps generation and version", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const [updated] = await sql<InstanceRow[]>`
      select * from berth_private.record_intent(${instance.id}, ${instance.version}, 'stopped')`;

    expect(updated!.desired_state).toBe("stopped");
    expect(updated!.generation).toBe(String(Number(instance.generation) + 1));
    expect(updated!.spec_generation).toBe(instance.spec_generation);
    expect(updated!.version).toBe(String(Number(instance.version) + 1));
  });

  test("stale version writes nothing", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    await sql`select berth_private.record_intent(${instance.id}, ${instance.version}, 'stopped')`;
    const afterFirst = await readInstance(sql, instance.id);

    const error = await sqlError(sql`select berth_private.record_intent(${instance.id}, ${instance.version}, 'running')`);
    const afterSecond = await readInstance(sql, instance.id);

    expect(error.code).toBe(SQLSTATE.versionConflict);
    expect(afterSecond.desired_state).toBe("stopped");
    expect(afterSecond.version).toBe(afterFirst.version);
    expect(afterSecond.generation).toBe(afterFirst.generation);
  });

  test("clears crash-loop back-off", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const leased = await claim(instance.id, "reconciler-pass");
    await sql`select berth_private.record_restart_attempt(${instance.id}, ${leased.lease_nonce})`;
    const backedOff = await readInstance(sql, instance.id);

    const [updated] = await sql<InstanceRow[]>`
      select * from berth_private.record_intent(${instance.id}, ${backedOff.version}, 'running')`;

    expect(backedOff.restart_attempts).toBe(1);
    expect(updated!.restart_attempts).toBe(0);
    expect(updated!.next_attempt_at).toBeNull();
  });

  test("removal cannot be taken back", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const [removing] = await sql<InstanceRow[]>`
      select * from berth_private.record_intent(${instance.id}, ${instance.version}, 'removed')`;
    const error = await sqlError(sql`select berth_private.record_intent(${instance.id}, ${removing!.version}, 'running')`);

    expect(error.code).toBe(SQLSTATE.instanceRemoved);
    expect((await readInstance(sql, instance.id)).desired_state).toBe("removed");
  });

  test("unknown instance raises not found", async () => {
    const { sql } = getDb();
    const error = await sqlError(sql`select berth_private.record_intent(gen_random_uuid(), 1, 'stopped')`);

    expect(error.code).toBe(SQLSTATE.instanceNotFound);
  });

  test("removed instance raises removed", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    await sql`update public.tool_instances set status = 'removed', status_reason_code = 'ContainerRemoved' where id = ${instance.id}`;
    const removed = await readInstance(sql, instance.id);
    const error = await sqlError(sql`select berth_private.record_intent(${instance.id}, ${removed.version}, 'running')`);

    expect(error.code).toBe(SQLSTATE.instanceRemoved);
  });
});

describe("leases", () => {
  test("claim returns nonce and database expiry", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const [clock] = await sql<{ now: Date }[]>`select clock_timestamp() as now`;
    const leased = await claim(instance.id, "driver-a", 30);

    expect(leased.lease_holder).toBe("driver-a");
    expect(leased.lease_nonce).toMatch(/^[0-9a-f-]{36}$/);
    const secondsAhead = (leased.lease_expires_at!.getTime() - clock!.now.getTime()) / 1000;
    expect(secondsAhead).toBeGreaterThan(29);
    expect(secondsAhead).toBeLessThan(31);
  });

  test("held lease rejects another holder", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const first = await claim(instance.id, "driver-a");
    const error = await sqlError(claim(instance.id, "driver-b"));

    expect(error.code).toBe(SQLSTATE.leaseHeld);
    expect((await readInstance(sql, instance.id)).lease_nonce).toBe(first.lease_nonce);
  });

  test("same holder renews with a new nonce", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const first = await claim(instance.id, "driver-a");
    const renewed = await claim(instance.id, "driver-a");

    expect(renewed.lease_nonce).not.toBe(first.lease_nonce);
  });

  test("two concurrent claims, exactly one wins", async () => {
    const { sql, url } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const clients = [postgres(url, { max: 1, onnotice: () => {} }), postgres(url, { max: 1, onnotice: () => {} })];
    try {
      await Promise.all(clients.map((client) => client`select 1`));
      // Each claim holds its transaction open briefly so the two truly overlap on the row lock.
      const outcomes = await Promise.allSettled(
        clients.map((client, index) =>
          client.begin(async (tx) => {
            const [row] = await tx<InstanceRow[]>`select * from berth_private.claim_instance_lease(${instance.id}, ${`racer-${index}`}, 30)`;
            await tx`select pg_sleep(0.2)`;
            return row!;
          }),
        ),
      );

      const winners = outcomes.filter((outcome) => outcome.status === "fulfilled");
      const losers = outcomes.filter((outcome) => outcome.status === "rejected");
      expect(winners).toHaveLength(1);
      expect(losers).toHaveLength(1);
      expect((losers[0] as PromiseRejectedResult).reason.code).toBe(SQLSTATE.leaseHeld);
      const stored = await readInstance(sql, instance.id);
      expect(stored.lease_nonce).toBe((winners[0] as PromiseFulfilledResult<InstanceRow>).value.lease_nonce);
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  });

  test("expired lease is taken by the next holder", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const first = await claim(instance.id, "driver-a", 1);
    await sql`select pg_sleep(1.1)`;
    const second = await claim(instance.id, "driver-b", 30);

    expect(second.lease_holder).toBe("driver-b");
    expect(second.lease_nonce).not.toBe(first.lease_nonce);
  });

  test("expiry uses the database clock", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    await claim(instance.id, "driver-a", 3600);
    await sql`update public.tool_instances set lease_expires_at = clock_timestamp() - interval '1 second' where id = ${instance.id}`;
    const taken = await claim(instance.id, "driver-b");

    expect(taken.lease_holder).toBe("driver-b");
  });

  test("release needs the current nonce", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const leased = await claim(instance.id, "driver-a");

    const [wrong] = await sql<{ released: boolean }[]>`
      select berth_private.release_instance_lease(${instance.id}, gen_random_uuid()) as released`;
    expect(wrong!.released).toBe(false);
    expect((await readInstance(sql, instance.id)).lease_nonce).toBe(leased.lease_nonce);

    const [right] = await sql<{ released: boolean }[]>`
      select berth_private.release_instance_lease(${instance.id}, ${leased.lease_nonce}) as released`;
    expect(right!.released).toBe(true);
    expect((await readInstance(sql, instance.id)).lease_nonce).toBeNull();
  });

  test("invalid ttl is rejected", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const error = await sqlError(claim(instance.id, "driver-a", 0));

    expect(error.code).toBe(SQLSTATE.invalidParameterValue);
  });
});

describe("set_instance_status", () => {
  test("current nonce writes status and event", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const leased = await claim(instance.id, "driver-a");
    const [updated] = await sql<InstanceRow[]>`
      select * from berth_private.set_instance_status(${instance.id}, ${leased.lease_nonce}, 'deploying', 'DeployRequested', 'Deploying.', 'user')`;

    expect(updated!.status).toBe("deploying");
    expect(updated!.status_reason_code).toBe("DeployRequested");
    expect(updated!.status_reason).toBe("Deploying.");
    expect(await countEvents(sql, instance.id)).toBe(2);
  });

  test("stale nonce writes nothing", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const stale = await claim(instance.id, "driver-a");
    await claim(instance.id, "driver-a");
    const before = await readInstance(sql, instance.id);

    const error = await sqlError(sql`
      select berth_private.set_instance_status(${instance.id}, ${stale.lease_nonce}, 'deploying', 'DeployRequested')`);
    const after = await readInstance(sql, instance.id);

    expect(error.code).toBe(SQLSTATE.leaseLost);
    expect(after.status).toBe("pending");
    expect(after.version).toBe(before.version);
    expect(await countEvents(sql, instance.id)).toBe(1);
  });

  test("expired lease writes nothing", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const leased = await claim(instance.id, "driver-a");
    await sql`update public.tool_instances set lease_expires_at = clock_timestamp() - interval '1 millisecond' where id = ${instance.id}`;
    const before = await readInstance(sql, instance.id);

    const error = await sqlError(sql`
      select berth_private.set_instance_status(${instance.id}, ${leased.lease_nonce}, 'deploying', 'DeployRequested')`);

    expect(error.code).toBe(SQLSTATE.leaseLost);
    expect((await readInstance(sql, instance.id)).version).toBe(before.version);
  });

  test("invalid transition under lease is rejected", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const leased = await claim(instance.id, "driver-a");
    const error = await sqlError(sql`
      select berth_private.set_instance_status(${instance.id}, ${leased.lease_nonce}, 'running', 'ContainerRunning')`);

    expect(error.code).toBe(SQLSTATE.invalidTransition);
    expect((await readInstance(sql, instance.id)).status).toBe("pending");
  });

  test("unleased write needs current version", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const error = await sqlError(sql`
      select berth_private.set_instance_status_at_version(${instance.id}, ${Number(instance.version) - 1}, 'deploying', 'DeployRequested')`);
    const [updated] = await sql<InstanceRow[]>`
      select * from berth_private.set_instance_status_at_version(${instance.id}, ${instance.version}, 'deploying', 'DeployRequested', null, 'agent')`;

    expect(error.code).toBe(SQLSTATE.versionConflict);
    expect(updated!.status).toBe("deploying");
  });

  test("unleased write yields to a lease", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const leased = await claim(instance.id, "driver-a");
    const error = await sqlError(sql`
      select berth_private.set_instance_status_at_version(${instance.id}, ${leased.version}, 'deploying', 'DeployRequested')`);

    expect(error.code).toBe(SQLSTATE.leaseHeld);
  });
});

describe("record_restart_attempt", () => {
  test("backs off exponentially up to the max", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const leased = await claim(instance.id, "reconciler-pass");
    const delays: number[] = [];

    for (let attempt = 0; attempt < 4; attempt += 1) {
      const [row] = await sql<{ delay: number }[]>`
        select extract(epoch from next_attempt_at - clock_timestamp())::float8 as delay
        from berth_private.record_restart_attempt(${instance.id}, ${leased.lease_nonce}, 10, 30)`;
      delays.push(Math.round(row!.delay));
    }

    expect(delays).toEqual([10, 20, 30, 30]);
    expect((await readInstance(sql, instance.id)).restart_attempts).toBe(4);
  });
});

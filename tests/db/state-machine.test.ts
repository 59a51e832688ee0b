import { beforeAll, describe, expect, test } from "vitest";
import { INSTANCE_STATUSES, SQLSTATE, isTransitionAllowed } from "../../packages/shared/src/index.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import {
  countEvents,
  createInstance,
  createToolbox,
  insertInstanceInStatus,
  readInstance,
  sqlError,
  type ToolboxRow,
} from "./fixtures.ts";

const getDb = useTestDatabase();

let ownerId: string;
let toolbox: ToolboxRow;

beforeAll(async () => {
  const { sql } = getDb();
  ownerId = await createUser(sql);
  toolbox = await createToolbox(sql, ownerId, { portRangeStart: 31000, portRangeEnd: 31999 });
});

interface EventRow {
  from_status: string | null;
  to_status: string;
  actor: string;
  reason_code: string | null;
  message: string | null;
  details: Record<string, unknown>;
}

describe("status transitions", () => {
  const pairs = INSTANCE_STATUSES.flatMap((from) => INSTANCE_STATUSES.map((to) => ({ from, to })));

  test("every pair is allowed or rejected", async () => {
    const { sql } = getDb();
    let port = 31000;

    for (const { from, to } of pairs) {
      port += 1;
      const instance = await insertInstanceInStatus(sql, ownerId, toolbox.id, from, port);
      const eventsBefore = await countEvents(sql, instance.id);
      const update = sql`
        update public.tool_instances set status = ${to}, status_reason_code = 'StuckTransition'
        where id = ${instance.id}`;

      if (from === to) {
        await update;
        const after = await readInstance(sql, instance.id);
        expect(after.status, `${from} -> ${to}`).toBe(from);
        expect(await countEvents(sql, instance.id), `${from} -> ${to} appends no event`).toBe(eventsBefore);
      } else if (isTransitionAllowed(from, to)) {
        await update;
        const after = await readInstance(sql, instance.id);
        const events = await sql<EventRow[]>`
          select * from public.instance_events where instance_id = ${instance.id} and from_status is not null`;
        expect(after.status, `${from} -> ${to}`).toBe(to);
        expect(events, `${from} -> ${to} appends one event`).toHaveLength(1);
        expect(events[0]!.from_status).toBe(from);
        expect(events[0]!.to_status).toBe(to);
      } else {
        const error = await sqlError(update);
        expect(error.code, `${from} -> ${to}`).toBe(SQLSTATE.invalidTransition);
        expect(error.message).toContain(`from ${from} to ${to}`);
        expect((await readInstance(sql, instance.id)).status, `${from} -> ${to} leaves the row`).toBe(from);
        expect(await countEvents(sql, instance.id), `${from} -> ${to} appends no event`).toBe(eventsBefore);
      }
    }
  });

  test("removed is final", async () => {
    const { sql } = getDb();
    const instance = await insertInstanceInStatus(sql, ownerId, toolbox.id, "removed", 31900);

    for (const to of INSTANCE_STATUSES.filter((status) => status !== "removed")) {
      const error = await sqlError(sql`update public.tool_instances set status = ${to} where id = ${instance.id}`);
      expect(error.code, `removed -> ${to}`).toBe(SQLSTATE.invalidTransition);
    }
  });
});

describe("status events", () => {
  test("creation appends a Created event", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const events = await sql<EventRow[]>`select * from public.instance_events where instance_id = ${instance.id}`;

    expect(events).toHaveLength(1);
    expect(events[0]!.from_status).toBeNull();
    expect(events[0]!.to_status).toBe("pending");
    expect(events[0]!.actor).toBe("user");
    expect(events[0]!.reason_code).toBe("Created");
  });

  test("event carries actor, reason and details", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const [leased] = await sql<{ lease_nonce: string }[]>`
      select lease_nonce from berth_private.claim_instance_lease(${instance.id}, 'test-driver', 30)`;

    await sql`
      select berth_private.set_instance_status(
        ${instance.id}, ${leased!.lease_nonce}, 'deploying', 'DeployRequested', 'Deploying the image.',
        'reconciler', ${sql.json({ attempt: 1 })}
      )`;
    const [event] = await sql<EventRow[]>`
      select * from public.instance_events where instance_id = ${instance.id} and to_status = 'deploying'`;

    expect(event!.actor).toBe("reconciler");
    expect(event!.reason_code).toBe("DeployRequested");
    expect(event!.message).toBe("Deploying the image.");
    expect(event!.details.attempt).toBe(1);
    expect(event!.details.generation).toBe(1);
  });

  test("event context is cleared after the write", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);

    const [context] = await sql.begin(async (tx) => {
      const [leased] = await tx<{ lease_nonce: string }[]>`
        select lease_nonce from berth_private.claim_instance_lease(${instance.id}, 'test-driver', 30)`;
      await tx`
        select berth_private.set_instance_status(${instance.id}, ${leased!.lease_nonce}, 'deploying', 'DeployRequested', null, 'agent')`;
      return tx<{ actor: string }[]>`select current_setting('berth.actor', true) as actor`;
    });

    expect(context!.actor).toBe("");
  });

  test("write outside functions is actor system", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    await sql`update public.tool_instances set status = 'deploying', status_reason_code = 'DeployRequested' where id = ${instance.id}`;
    const [event] = await sql<EventRow[]>`
      select * from public.instance_events where instance_id = ${instance.id} and to_status = 'deploying'`;

    expect(event!.actor).toBe("system");
  });

  test("invalid reason code is rejected", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const [leased] = await sql<{ lease_nonce: string }[]>`
      select lease_nonce from berth_private.claim_instance_lease(${instance.id}, 'test-driver', 30)`;

    const error = await sqlError(sql`
      select berth_private.set_instance_status(${instance.id}, ${leased!.lease_nonce}, 'deploying', 'NoSuchReason')`);

    expect(error.code).toBe(SQLSTATE.invalidParameterValue);
    expect(error.column_name).toBe("status_reason_code");
  });
});

describe("version stamps", () => {
  test("update bumps version and updated_at", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const [updated] = await sql<{ version: string; updated_at: Date; created_at: Date }[]>`
      update public.tool_instances set health = 'healthy' where id = ${instance.id}
      returning version, updated_at, created_at`;

    expect(updated!.version).toBe(String(Number(instance.version) + 1));
    expect(updated!.updated_at.getTime()).toBeGreaterThanOrEqual(updated!.created_at.getTime());
  });

  test("no-op update writes nothing", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const result = await sql`update public.tool_instances set name = name, status = status where id = ${instance.id}`;

    expect(result.count).toBe(0);
    expect((await readInstance(sql, instance.id)).version).toBe(instance.version);
  });

  test("status change stamps status_changed_at", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const [before] = await sql<{ status_changed_at: Date }[]>`
      update public.tool_instances set status_changed_at = now() - interval '1 hour' where id = ${instance.id}
      returning status_changed_at`;
    const [after] = await sql<{ status_changed_at: Date }[]>`
      update public.tool_instances set status = 'deploying', status_reason_code = 'DeployRequested' where id = ${instance.id}
      returning status_changed_at`;

    expect(after!.status_changed_at.getTime()).toBeGreaterThan(before!.status_changed_at.getTime());
  });
});

describe("append-only events", () => {
  test("update is rejected", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const error = await sqlError(sql`update public.instance_events set message = 'changed' where instance_id = ${instance.id}`);

    expect(error.code).toBe(SQLSTATE.eventsAppendOnly);
  });

  test("delete is rejected", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const error = await sqlError(sql`delete from public.instance_events where instance_id = ${instance.id}`);

    expect(error.code).toBe(SQLSTATE.eventsAppendOnly);
    expect(await countEvents(sql, instance.id)).toBe(1);
  });

  test("truncate is rejected", async () => {
    const { sql } = getDb();
    const error = await sqlError(sql`truncate public.instance_events`);

    expect(error.code).toBe(SQLSTATE.eventsAppendOnly);
  });

  test("account deletion cascades to events", async () => {
    const { sql } = getDb();
    const leaving = await createUser(sql);
    const box = await createToolbox(sql, leaving);
    const instance = await createInstance(sql, leaving, box.id);

    await sql`delete from auth.users where id = ${leaving}`;

    expect(await countEvents(sql, instance.id)).toBe(0);
  });
});

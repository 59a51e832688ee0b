import { describe, expect, test } from "vitest";
import {
  DESIRED_STATES,
  EVENT_ACTORS,
  INSTANCE_STATUSES,
  INSTANCE_STATUS_TRANSITIONS,
  REASON_CODES,
  TOOLBOX_STATUSES,
} from "../../packages/shared/src/index.ts";
import { useTestDatabase } from "../support/db.ts";

const getDb = useTestDatabase();

async function enumValues(typeName: string): Promise<string[]> {
  const { sql } = getDb();
  const rows = await sql<{ value: string }[]>`
    select e.enumlabel as value
    from pg_enum as e
    join pg_type as t on t.oid = e.enumtypid
    join pg_namespace as n on n.oid = t.typnamespace
    where n.nspname = 'public' and t.typname = ${typeName}
    order by e.enumsortorder`;
  return rows.map((row) => row.value);
}

describe("shared contract matches the database", () => {
  test("instance statuses", async () => {
    expect(await enumValues("instance_status")).toEqual([...INSTANCE_STATUSES]);
  });

  test("desired states", async () => {
    expect(await enumValues("desired_state")).toEqual([...DESIRED_STATES]);
  });

  test("toolbox statuses", async () => {
    expect(await enumValues("toolbox_status")).toEqual([...TOOLBOX_STATUSES]);
  });

  test("event actors", async () => {
    expect(await enumValues("event_actor")).toEqual([...EVENT_ACTORS]);
  });

  test("transition table", async () => {
    const { sql } = getDb();
    const rows = await sql<{ pair: string }[]>`
      select from_status || '->' || to_status as pair from berth_private.instance_status_transitions`;
    const inSql = rows.map((row) => row.pair).sort();
    const inShared = Object.entries(INSTANCE_STATUS_TRANSITIONS)
      .flatMap(([from, targets]) => targets.map((to) => `${from}->${to}`))
      .sort();

    expect(inSql).toEqual(inShared);
  });

  test("reason codes", async () => {
    const { sql } = getDb();
    const rows = await sql<{ code: string }[]>`select code from berth_private.reason_codes`;
    expect(rows.map((row) => row.code).sort()).toEqual([...REASON_CODES].sort());
  });
});

import { beforeAll, describe, expect, test } from "vitest";
import { SQLSTATE } from "../../packages/shared/src/index.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { createInstance, createToolbox, readInstance, sqlError, type InstanceRow, type ToolboxRow } from "./fixtures.ts";

const getDb = useTestDatabase();

let ownerId: string;
let toolbox: ToolboxRow;

beforeAll(async () => {
  const { sql } = getDb();
  ownerId = await createUser(sql);
  toolbox = await createToolbox(sql, ownerId);
});

/** One container observation as an agent reports it. */
type Observation = Record<string, string | number | boolean | null>;

function observation(instanceId: string, overrides: Observation = {}): Observation {
  return {
    instance_id: instanceId,
    container_id: "c0ffee",
    state: "running",
    exit_code: 0,
    oom_killed: false,
    restart_count: 0,
    generation: 1,
    host_port: 30001,
    started_at: "2026-12-04T10:00:00.000Z",
    finished_at: "0001-01-01T00:00:00Z",
    health: null,
    ...overrides,
  };
}

describe("record_observation", () => {
  test("first report writes the observation", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const rows = await sql<InstanceRow[]>`
      select * from berth_private.record_observation(${toolbox.id}, ${instance.id}, ${sql.json(observation(instance.id))})`;

    expect(rows).toHaveLength(1);
    expect(rows[0]!.container_id).toBe("c0ffee");
    expect(rows[0]!.docker_state).toBe("running");
    expect(rows[0]!.observed_at).not.toBeNull();
  });

  test("identical report rewrites nothing", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const report = sql.json(observation(instance.id));
    await sql`select * from berth_private.record_observation(${toolbox.id}, ${instance.id}, ${report})`;
    const before = await readInstance(sql, instance.id);
    const [rowBefore] = await sql<{ xmin: string }[]>`select xmin::text from public.tool_instances where id = ${instance.id}`;

    const rows = await sql`select * from berth_private.record_observation(${toolbox.id}, ${instance.id}, ${report})`;
    const after = await readInstance(sql, instance.id);
    const [rowAfter] = await sql<{ xmin: string }[]>`select xmin::text from public.tool_instances where id = ${instance.id}`;

    expect(rows).toHaveLength(0);
    expect(after.version).toBe(before.version);
    expect(after.observed_at).toEqual(before.observed_at);
    // The transaction id that wrote the row version stays the same: no new version was written.
    expect(rowAfter!.xmin).toBe(rowBefore!.xmin);
  });

  test("changed report is written", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    await sql`select * from berth_private.record_observation(${toolbox.id}, ${instance.id}, ${sql.json(observation(instance.id))})`;
    const rows = await sql<InstanceRow[]>`
      select * from berth_private.record_observation(${toolbox.id}, ${instance.id},
        ${sql.json(observation(instance.id, { state: "exited", exit_code: 137, oom_killed: true }))})`;

    expect(rows).toHaveLength(1);
    expect(rows[0]!.docker_state).toBe("exited");
    expect(rows[0]!.exit_code).toBe(137);
  });

  test("docker zero time becomes null", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const [row] = await sql<{ finished_at: Date | null; started_at: Date | null }[]>`
      select finished_at, started_at
      from berth_private.record_observation(${toolbox.id}, ${instance.id}, ${sql.json(observation(instance.id))})`;

    expect(row!.finished_at).toBeNull();
    expect(row!.started_at).toEqual(new Date("2026-12-04T10:00:00.000Z"));
  });

  test("status is left to the writers", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    await sql`select * from berth_private.record_observation(${toolbox.id}, ${instance.id}, ${sql.json(observation(instance.id))})`;

    expect((await readInstance(sql, instance.id)).status).toBe("pending");
  });

  test("malformed field is rejected by name", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const error = await sqlError(sql`
      select * from berth_private.record_observation(${toolbox.id}, ${instance.id}, ${sql.json(observation(instance.id, { exit_code: "boom" }))})`);

    expect(error.code).toBe(SQLSTATE.invalidParameterValue);
    expect(error.detail).toBe("field=exit_code");
  });

  test("instance of another toolbox is not found", async () => {
    const { sql } = getDb();
    const other = await createToolbox(sql, ownerId);
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const error = await sqlError(sql`
      select * from berth_private.record_observation(${other.id}, ${instance.id}, ${sql.json(observation(instance.id))})`);

    expect(error.code).toBe(SQLSTATE.instanceNotFound);
  });
});

describe("record_inventory", () => {
  test("records listed and absent containers", async () => {
    const { sql } = getDb();
    const box = await createToolbox(sql, ownerId);
    const listed = await createInstance(sql, ownerId, box.id);
    const absent = await createInstance(sql, ownerId, box.id);
    await sql`select * from berth_private.record_observation(${box.id}, ${absent.id}, ${sql.json(observation(absent.id, { container_id: "gone" }))})`;

    const changed = await sql<InstanceRow[]>`
      select * from berth_private.record_inventory(${box.id}, ${sql.json([observation(listed.id), observation("00000000-0000-4000-8000-000000000000")])})`;

    expect(changed.map((row) => row.id).sort()).toEqual([listed.id, absent.id].sort());
    expect((await readInstance(sql, listed.id)).container_id).toBe("c0ffee");
    expect((await readInstance(sql, absent.id)).container_id).toBeNull();
  });

  test("repeated inventory writes nothing", async () => {
    const { sql } = getDb();
    const box = await createToolbox(sql, ownerId);
    const instances = await Promise.all([1, 2, 3].map(() => createInstance(sql, ownerId, box.id)));
    const inventory = sql.json(instances.map((instance) => observation(instance.id)));
    await sql`select * from berth_private.record_inventory(${box.id}, ${inventory})`;

    const changed = await sql`select * from berth_private.record_inventory(${box.id}, ${inventory})`;

    expect(changed).toHaveLength(0);
  });

  test("non-uuid instance id is rejected", async () => {
    const { sql } = getDb();
    const error = await sqlError(sql`
      select * from berth_private.record_inventory(${toolbox.id}, ${sql.json([observation("not-a-uuid")])})`);

    expect(error.code).toBe(SQLSTATE.invalidParameterValue);
    expect(error.detail).toBe("field=instance_id");
  });
});

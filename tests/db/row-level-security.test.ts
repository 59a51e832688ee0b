import { beforeAll, describe, expect, test } from "vitest";
import { mintAnonKey, mintServiceRoleKey, mintUserJwt } from "../../stack/jwt.ts";
import { asJwt, createUser, useTestDatabase } from "../support/db.ts";
import { createInstance, createToolbox, readInstance, sqlError, type InstanceRow, type ToolboxRow } from "./fixtures.ts";

const getDb = useTestDatabase();

const INSUFFICIENT_PRIVILEGE = "42501";
const OWNED_TABLES = ["toolboxes", "tool_instances", "instance_events"] as const;

interface Tenant {
  id: string;
  jwt: string;
  toolbox: ToolboxRow;
  instance: InstanceRow;
}

let alice: Tenant;
let bob: Tenant;

async function createTenant(): Promise<Tenant> {
  const { sql } = getDb();
  const id = await createUser(sql);
  const toolbox = await createToolbox(sql, id);
  const instance = await createInstance(sql, id, toolbox.id);
  return { id, jwt: await mintUserJwt(id), toolbox, instance };
}

beforeAll(async () => {
  alice = await createTenant();
  bob = await createTenant();
  const { sql } = getDb();
  await sql`select berth_private.start_reconcile_run('rls-test')`;
});

describe("owner reads", () => {
  for (const table of OWNED_TABLES) {
    test(`${table} shows only own rows`, async () => {
      const { sql } = getDb();
      const rows = await asJwt(sql, alice.jwt, (tx) => tx<{ owner_id: string }[]>`select owner_id from ${tx("public." + table)}`);

      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((row) => row.owner_id === alice.id)).toBe(true);
    });
  }

  test("other owner's instance by id is empty", async () => {
    const { sql } = getDb();
    const rows = await asJwt(sql, alice.jwt, (tx) => tx`select * from public.tool_instances where id = ${bob.instance.id}`);

    expect(rows).toHaveLength(0);
  });

  test("other owner's events by instance are empty", async () => {
    const { sql } = getDb();
    const rows = await asJwt(sql, alice.jwt, (tx) => tx`select * from public.instance_events where instance_id = ${bob.instance.id}`);

    expect(rows).toHaveLength(0);
  });

  test("reconcile_runs is not readable", async () => {
    const { sql } = getDb();
    const error = await sqlError(asJwt(sql, alice.jwt, (tx) => tx`select * from public.reconcile_runs`));

    expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
  });
});

describe("owner writes", () => {
  test("insert toolbox is denied", async () => {
    const { sql } = getDb();
    const error = await sqlError(asJwt(sql, alice.jwt, (tx) => tx`
      insert into public.toolboxes (owner_id, name, agent_url) values (${alice.id}, 'sneaky', 'http://127.0.0.1:30000')`));

    expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
  });

  test("insert instance for other owner is denied", async () => {
    const { sql } = getDb();
    const error = await sqlError(asJwt(sql, alice.jwt, (tx) => tx`
      insert into public.tool_instances (owner_id, toolbox_id, name, image, container_port, host_port)
      values (${bob.id}, ${bob.toolbox.id}, 'sneaky', 'nginx', 80, 30500)`));

    expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
  });

  test("insert event is denied", async () => {
    const { sql } = getDb();
    const error = await sqlError(asJwt(sql, alice.jwt, (tx) => tx`
      insert into public.instance_events (instance_id, owner_id, toolbox_id, to_status, actor)
      values (${alice.instance.id}, ${alice.id}, ${alice.toolbox.id}, 'running', 'user')`));

    expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
  });

  for (const owner of ["own", "other"] as const) {
    test(`update ${owner} instance is denied`, async () => {
      const { sql } = getDb();
      const target = owner === "own" ? alice : bob;
      const error = await sqlError(asJwt(sql, alice.jwt, (tx) => tx`
        update public.tool_instances set desired_state = 'stopped' where id = ${target.instance.id}`));

      expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
      expect((await readInstance(sql, target.instance.id)).desired_state).toBe("running");
    });

    test(`delete ${owner} toolbox is denied`, async () => {
      const { sql } = getDb();
      const target = owner === "own" ? alice : bob;
      const error = await sqlError(asJwt(sql, alice.jwt, (tx) => tx`delete from public.toolboxes where id = ${target.toolbox.id}`));

      expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
    });

    test(`delete ${owner} events is denied`, async () => {
      const { sql } = getDb();
      const target = owner === "own" ? alice : bob;
      const error = await sqlError(asJwt(sql, alice.jwt, (tx) => tx`
        delete from public.instance_events where instance_id = ${target.instance.id}`));

      expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
    });
  }

  test("update own toolbox is denied", async () => {
    const { sql } = getDb();
    const error = await sqlError(asJwt(sql, alice.jwt, (tx) => tx`
      update public.toolboxes set status = 'active' where id = ${alice.toolbox.id}`));

    expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
  });

  test("private write function is denied", async () => {
    const { sql } = getDb();
    const error = await sqlError(asJwt(sql, alice.jwt, (tx) => tx`
      select berth_private.record_intent(${alice.instance.id}, ${alice.instance.version}, 'stopped')`));

    expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
  });
});

describe("anon", () => {
  for (const table of [...OWNED_TABLES, "reconcile_runs"]) {
    test(`${table} is not readable`, async () => {
      const { sql } = getDb();
      const error = await sqlError(asJwt(sql, await mintAnonKey(), (tx) => tx`select * from ${tx("public." + table)}`));

      expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
    });
  }

  test("insert toolbox is denied", async () => {
    const { sql } = getDb();
    const error = await sqlError(asJwt(sql, await mintAnonKey(), (tx) => tx`
      insert into public.toolboxes (owner_id, name, agent_url) values (${alice.id}, 'anon-box', 'http://127.0.0.1:30000')`));

    expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
  });

  test("private schema is not usable", async () => {
    const { sql } = getDb();
    const error = await sqlError(asJwt(sql, await mintAnonKey(), (tx) => tx`select * from berth_private.instance_secrets`));

    expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
  });
});

describe("service_role", () => {
  test("reads every owner's rows", async () => {
    const { sql } = getDb();
    const rows = await asJwt(sql, await mintServiceRoleKey(), (tx) => tx<{ owner_id: string }[]>`
      select distinct owner_id from public.tool_instances where owner_id in (${alice.id}, ${bob.id})`);

    expect(rows).toHaveLength(2);
  });

  test("reads reconcile runs", async () => {
    const { sql } = getDb();
    const rows = await asJwt(sql, await mintServiceRoleKey(), (tx) => tx`select * from public.reconcile_runs`);

    expect(rows.length).toBeGreaterThan(0);
  });

  test("direct table write is denied", async () => {
    const { sql } = getDb();
    const error = await sqlError(asJwt(sql, await mintServiceRoleKey(), (tx) => tx`
      update public.tool_instances set desired_state = 'stopped' where id = ${alice.instance.id}`));

    expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
  });

  test("write function is allowed", async () => {
    const { sql } = getDb();
    const current = await readInstance(sql, alice.instance.id);
    const [row] = await asJwt(sql, await mintServiceRoleKey(), (tx) => tx<{ desired_state: string }[]>`
      select desired_state from berth_private.record_intent(${current.id}, ${current.version}, 'stopped')`);

    expect(row!.desired_state).toBe("stopped");
  });
});

import { beforeAll, describe, expect, test } from "vitest";
import type { TransactionSql } from "postgres";
import { mintUserJwt } from "../../stack/jwt.ts";
import { asJwt, createUser, useTestDatabase } from "../support/db.ts";
import { createInstance, createToolbox, readInstance, sqlError, type ToolboxRow } from "./fixtures.ts";

const getDb = useTestDatabase();

const INSUFFICIENT_PRIVILEGE = "42501";
const SECRET_VALUE = "sk-live-7f3c9a1e-do-not-leak";

let ownerId: string;
let toolbox: ToolboxRow;

beforeAll(async () => {
  const { sql } = getDb();
  ownerId = await createUser(sql);
  toolbox = await createToolbox(sql, ownerId);
});

async function secretValues(instanceId: string): Promise<Record<string, string>> {
  const { sql } = getDb();
  const [row] = await sql<{ values: Record<string, string> }[]>`
    select berth_private.instance_secret_values(${instanceId}) as values`;
  return row!.values;
}

describe("secret storage", () => {
  test("owner can read no secret value", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id, { secrets: { API_KEY: SECRET_VALUE } });
    const readable = await sql<{ schema: string; name: string }[]>`
      select n.nspname as schema, c.relname as name
      from pg_class as c
      join pg_namespace as n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p', 'v', 'm')
        and n.nspname not in ('pg_catalog', 'information_schema')
        and has_table_privilege('authenticated', c.oid, 'SELECT')`;
    const jwt = await mintUserJwt(ownerId);

    expect(readable.length).toBeGreaterThan(0);
    for (const table of readable) {
      const rows = await asJwt(sql, jwt, (tx) => tx`select * from ${tx(`${table.schema}.${table.name}`)}`);
      expect(JSON.stringify(rows), `${table.schema}.${table.name}`).not.toContain(SECRET_VALUE);
    }
    expect(instance.secret_names).toEqual(["API_KEY"]);
  });

  test("value is kept for the edge functions", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id, { secrets: { API_KEY: SECRET_VALUE, OTHER: "two" } });

    expect(await secretValues(instance.id)).toEqual({ API_KEY: SECRET_VALUE, OTHER: "two" });
  });

  test("owner cannot read the private table", async () => {
    const { sql } = getDb();
    const error = await sqlError(asJwt(sql, await mintUserJwt(ownerId), (tx) => tx`select * from berth_private.instance_secrets`));

    expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
  });

  test("owner cannot call the secret functions", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id, { secrets: { API_KEY: SECRET_VALUE } });
    const jwt = await mintUserJwt(ownerId);

    const readError = await sqlError(asJwt(sql, jwt, (tx) => tx`select berth_private.instance_secret_values(${instance.id})`));
    const writeError = await sqlError(asJwt(sql, jwt, (tx) => tx`select berth_private.set_instance_secret(${instance.id}, 'API_KEY', 'x')`));

    expect(readError.code).toBe(INSUFFICIENT_PRIVILEGE);
    expect(writeError.code).toBe(INSUFFICIENT_PRIVILEGE);
  });

  test("changed value bumps the spec generation", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id, { secrets: { API_KEY: "one" } });

    const [same] = await sql<{ spec_generation: string }[]>`
      select spec_generation from berth_private.set_instance_secret(${instance.id}, 'API_KEY', 'one')`;
    const [changed] = await sql<{ spec_generation: string }[]>`
      select spec_generation from berth_private.set_instance_secret(${instance.id}, 'API_KEY', 'two')`;

    expect(same!.spec_generation).toBe(instance.spec_generation);
    expect(Number(changed!.spec_generation)).toBe(Number(instance.spec_generation) + 1);
    expect(await secretValues(instance.id)).toEqual({ API_KEY: "two" });
  });

  test("new secret adds its name", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    await sql`select berth_private.set_instance_secret(${instance.id}, 'NEW_TOKEN', 'value')`;

    expect((await readInstance(sql, instance.id)).secret_names).toEqual(["NEW_TOKEN"]);
  });

  test("deleted secret drops name and value", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id, { secrets: { A_KEY: "a", B_KEY: "b" } });
    await sql`select berth_private.delete_instance_secret(${instance.id}, 'A_KEY')`;

    expect((await readInstance(sql, instance.id)).secret_names).toEqual(["B_KEY"]);
    expect(await secretValues(instance.id)).toEqual({ B_KEY: "b" });
  });

  test("invalid secret name is rejected", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const error = await sqlError(sql`select berth_private.set_instance_secret(${instance.id}, 'not valid', 'x')`);

    expect(error.code).toBe("22023");
    expect(error.column_name).toBe("secret_names");
  });

  test("removal purges the values", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id, { secrets: { API_KEY: SECRET_VALUE } });
    await sql`update public.tool_instances set status = 'removed', status_reason_code = 'ContainerRemoved' where id = ${instance.id}`;
    const [stored] = await sql<{ count: number }[]>`
      select count(*)::int as count from berth_private.instance_secrets where instance_id = ${instance.id}`;

    expect(stored!.count).toBe(0);
  });
});

/**
 * Minimal stand-in for Supabase Vault: the real extension (supabase_vault) cannot be installed
 * on this PostgreSQL. It has the same function signatures and view name, without encryption.
 */
async function installVaultStandIn(tx: TransactionSql): Promise<void> {
  await tx.unsafe(`
    create schema vault;
    create table vault.secrets (id uuid primary key default gen_random_uuid(), name text unique, description text, secret text);
    create function vault.create_secret(new_secret text, new_name text default null, new_description text default '', new_key_id uuid default null)
      returns uuid language sql as $$
        insert into vault.secrets (name, description, secret) values (new_name, new_description, new_secret) returning id
      $$;
    create function vault.update_secret(secret_id uuid, new_secret text default null, new_name text default null,
                                        new_description text default null, new_key_id uuid default null)
      returns void language sql as $$
        update vault.secrets set secret = coalesce(new_secret, secret), name = coalesce(new_name, name) where id = secret_id
      $$;
    create view vault.decrypted_secrets as select id, name, description, secret, secret as decrypted_secret from vault.secrets;
  `);
}

class Rollback extends Error {}

describe("secret storage with Vault", () => {
  test("values go to Vault, ids stay private", async () => {
    const { sql } = getDb();
    const outcome = await sql
      .begin(async (tx) => {
        await installVaultStandIn(tx);
        const [instance] = await tx<{ id: string }[]>`
          select id from berth_private.create_instance(${ownerId}, ${toolbox.id}, 'vaulted', 'nginx', 8080,
            p_secrets => ${tx.json({ API_KEY: SECRET_VALUE })})`;
        const instanceId = instance!.id;

        const [stored] = await tx<{ value: string | null; vault_secret_id: string | null }[]>`
          select value, vault_secret_id from berth_private.instance_secrets where instance_id = ${instanceId}`;
        const [vaulted] = await tx<{ secret: string; name: string }[]>`select secret, name from vault.secrets where id = ${stored!.vault_secret_id}`;
        const [before] = await tx<{ values: Record<string, string> }[]>`select berth_private.instance_secret_values(${instanceId}) as values`;

        await tx`select berth_private.set_instance_secret(${instanceId}, 'API_KEY', 'rotated')`;
        const [after] = await tx<{ values: Record<string, string> }[]>`select berth_private.instance_secret_values(${instanceId}) as values`;
        const [vaultRows] = await tx<{ count: number }[]>`select count(*)::int as count from vault.secrets`;

        await tx`update public.tool_instances set status = 'removed', status_reason_code = 'ContainerRemoved' where id = ${instanceId}`;
        const [vaultRowsAfterRemoval] = await tx<{ count: number }[]>`select count(*)::int as count from vault.secrets`;

        throw new Rollback(JSON.stringify({ stored, vaulted, before, after, vaultRows, vaultRowsAfterRemoval, instanceId }));
      })
      .catch((error: unknown) => {
        if (error instanceof Rollback) return JSON.parse(error.message);
        throw error;
      });

    expect(outcome.stored.value).toBeNull();
    expect(outcome.stored.vault_secret_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(outcome.vaulted.secret).toBe(SECRET_VALUE);
    expect(outcome.vaulted.name).toBe(`berth:instance:${outcome.instanceId}:API_KEY`);
    expect(outcome.before.values).toEqual({ API_KEY: SECRET_VALUE });
    expect(outcome.after.values).toEqual({ API_KEY: "rotated" });
    expect(outcome.vaultRows.count).toBe(1);
    expect(outcome.vaultRowsAfterRemoval.count).toBe(0);
  });
});

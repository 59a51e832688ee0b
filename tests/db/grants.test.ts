import { describe, expect, test } from "vitest";
import { useTestDatabase } from "../support/db.ts";

const getDb = useTestDatabase();

const API_ROLES = ["anon", "authenticated", "service_role"] as const;
const BERTH_SCHEMAS = ["public", "berth_private"] as const;

// Array parameters as PostgreSQL array literals, cast to text[] in the queries.
const API_ROLES_SQL = `{${API_ROLES.join(",")}}`;
const BERTH_SCHEMAS_SQL = `{${BERTH_SCHEMAS.join(",")}}`;

/** Every privilege each API role has on a Berth table or sequence, as "role schema.name PRIVILEGE". */
const EXPECTED_RELATION_PRIVILEGES = [
  "authenticated public.instance_events SELECT",
  "authenticated public.tool_instances SELECT",
  "authenticated public.toolboxes SELECT",
  "service_role public.instance_events SELECT",
  "service_role public.reconcile_runs SELECT",
  "service_role public.tool_instances SELECT",
  "service_role public.toolboxes SELECT",
].sort();

/** The functions service_role may execute. Neither anon nor authenticated may execute any. */
const SERVICE_ROLE_FUNCTIONS = [
  "apply_reconcile_statuses",
  "begin_idempotent_request",
  "begin_reconcile_run",
  "claim_reconcile_batch",
  "claim_instance_lease",
  "claim_instance_lease_at_version",
  "claim_toolboxes_for_reconcile",
  "complete_idempotent_request",
  "create_instance",
  "create_toolbox",
  "decommission_toolbox",
  "delete_instance_secret",
  "finish_reconcile_batch",
  "finish_reconcile_run",
  "finish_toolbox_reconcile",
  "instance_secret_values",
  "reallocate_host_port",
  "record_reconcile_batch",
  "record_reconcile_event",
  "record_intent",
  "record_inventory",
  "record_observation",
  "record_restart_attempt",
  "record_toolbox_failure",
  "record_toolbox_heartbeat",
  "release_instance_lease",
  "rotate_toolbox_token",
  "set_instance_secret",
  "set_instance_status",
  "set_instance_status_at_version",
  "set_toolbox_status",
  "start_reconcile_run",
].map((name) => `service_role berth_private.${name}`);

const EXPECTED_POLICIES = [
  { table: "public.instance_events", name: "instance_events_select_own" },
  { table: "public.tool_instances", name: "tool_instances_select_own" },
  { table: "public.toolboxes", name: "toolboxes_select_own" },
];

describe("grants", () => {
  test("table and sequence privileges per role", async () => {
    const { sql } = getDb();
    const rows = await sql<{ grant: string }[]>`
      select r.role || ' ' || n.nspname || '.' || c.relname || ' ' || p.privilege as grant
      from pg_class as c
      join pg_namespace as n on n.oid = c.relnamespace
      cross join unnest(${API_ROLES_SQL}::text[]) as r(role)
      cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) as p(privilege)
      where n.nspname = any (${BERTH_SCHEMAS_SQL}::text[]) and c.relkind in ('r', 'p', 'v', 'm', 'f')
        and has_table_privilege(r.role, c.oid, p.privilege)
      union all
      select r.role || ' ' || n.nspname || '.' || c.relname || ' ' || p.privilege
      from pg_class as c
      join pg_namespace as n on n.oid = c.relnamespace
      cross join unnest(${API_ROLES_SQL}::text[]) as r(role)
      cross join unnest(array['USAGE', 'SELECT', 'UPDATE']) as p(privilege)
      where n.nspname = any (${BERTH_SCHEMAS_SQL}::text[]) and c.relkind = 'S'
        and has_sequence_privilege(r.role, c.oid, p.privilege)`;

    expect(rows.map((row) => row.grant).sort()).toEqual(EXPECTED_RELATION_PRIVILEGES);
  });

  test("function execute per role", async () => {
    const { sql } = getDb();
    const rows = await sql<{ grant: string }[]>`
      select r.role || ' ' || n.nspname || '.' || p.proname as grant
      from pg_proc as p
      join pg_namespace as n on n.oid = p.pronamespace
      cross join unnest(${API_ROLES_SQL}::text[]) as r(role)
      where n.nspname = any (${BERTH_SCHEMAS_SQL}::text[])
        and not exists (select 1 from pg_depend as d where d.objid = p.oid and d.deptype = 'e')
        and has_function_privilege(r.role, p.oid, 'EXECUTE')`;

    expect(rows.map((row) => row.grant).sort()).toEqual(SERVICE_ROLE_FUNCTIONS.sort());
  });

  test("private schema usage per role", async () => {
    const { sql } = getDb();
    const rows = await sql<{ role: string }[]>`
      select r.role
      from unnest(${API_ROLES_SQL}::text[]) as r(role)
      where has_schema_privilege(r.role, 'berth_private', 'USAGE')`;

    expect(rows.map((row) => row.role)).toEqual(["service_role"]);
  });

  test("private functions are security definer with empty search_path", async () => {
    const { sql } = getDb();
    const rows = await sql<{ name: string; definer: boolean; config: string[] | null }[]>`
      select p.proname as name, p.prosecdef as definer, p.proconfig as config
      from pg_proc as p
      join pg_namespace as n on n.oid = p.pronamespace
      where n.nspname = 'berth_private' and p.proname = any (${`{${SERVICE_ROLE_FUNCTIONS.map((entry) => entry.split(".")[1]!).join(",")}}`}::text[])`;

    expect(rows).toHaveLength(SERVICE_ROLE_FUNCTIONS.length);
    for (const row of rows) {
      expect(row.definer, row.name).toBe(true);
      expect(row.config, row.name).toEqual(['search_path=""']);
    }
  });
});

describe("policies", () => {
  test("exact set of policies", async () => {
    const { sql } = getDb();
    const rows = await sql<{ table: string; name: string; command: string; roles: string[]; permissive: string; qual: string }[]>`
      select schemaname || '.' || tablename as table, policyname as name, cmd as command, roles, permissive, qual
      from pg_policies
      where schemaname = any (${BERTH_SCHEMAS_SQL}::text[])
      order by 1, 2`;

    expect(rows.map(({ table, name }) => ({ table, name }))).toEqual(EXPECTED_POLICIES);
    for (const row of rows) {
      expect(row.command, row.name).toBe("SELECT");
      expect(row.roles, row.name).toEqual(["authenticated"]);
      expect(row.permissive, row.name).toBe("PERMISSIVE");
      expect(row.qual.replace(/\s+/g, " "), row.name).toBe("(owner_id = ( SELECT auth.uid() AS uid))");
    }
  });

  test("row level security on every table", async () => {
    const { sql } = getDb();
    const rows = await sql<{ table: string }[]>`
      select n.nspname || '.' || c.relname as table
      from pg_class as c
      join pg_namespace as n on n.oid = c.relnamespace
      where n.nspname = any (${BERTH_SCHEMAS_SQL}::text[]) and c.relkind in ('r', 'p') and not c.relrowsecurity`;

    expect(rows.map((row) => row.table)).toEqual([]);
  });

  test("owner columns are indexed", async () => {
    const { sql } = getDb();
    const rows = await sql<{ table: string }[]>`
      select c.relname as table
      from pg_class as c
      join pg_namespace as n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relname in ('toolboxes', 'tool_instances', 'instance_events')
        and not exists (
          select 1 from pg_index as i
          join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
          where i.indrelid = c.oid and a.attname = 'owner_id'
        )`;

    expect(rows.map((row) => row.table)).toEqual([]);
  });
});

describe("documentation", () => {
  test("every table and function has a comment", async () => {
    const { sql } = getDb();
    const rows = await sql<{ object: string }[]>`
      select 'function ' || p.oid::regprocedure::text as object
      from pg_proc as p
      join pg_namespace as n on n.oid = p.pronamespace
      where n.nspname = any (${BERTH_SCHEMAS_SQL}::text[])
        and not exists (select 1 from pg_depend as d where d.objid = p.oid and d.deptype = 'e')
        and obj_description(p.oid, 'pg_proc') is null
      union all
      select 'table ' || c.oid::regclass::text
      from pg_class as c
      join pg_namespace as n on n.oid = c.relnamespace
      where n.nspname = any (${BERTH_SCHEMAS_SQL}::text[]) and c.relkind in ('r', 'p')
        and obj_description(c.oid, 'pg_class') is null`;

    expect(rows.map((row) => row.object)).toEqual([]);
  });
});


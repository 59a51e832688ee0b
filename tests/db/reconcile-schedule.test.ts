import { readFile } from "node:fs/promises";
import path from "node:path";
import postgres, { type TransactionSql } from "postgres";
import { describe, expect, inject, test } from "vitest";
import { MIGRATIONS_DIR } from "../../stack/paths.ts";

const SCHEDULE_MIGRATION = path.join(MIGRATIONS_DIR, "20261204001000_reconcile_schedule.sql");
const PROJECT_URL = "https://project-ref.supabase.test/";
const SERVICE_ROLE_KEY = "service-role-key-for-schedule-test";

/**
 * Returns why pg_cron cannot run in the admin database of the test server, or null when it can.
 * pg_cron must be preloaded and only installs into the database named by cron.database_name.
 */
async function pgCronUnavailableReason(sql: postgres.Sql): Promise<string | null> {
  const [row] = await sql<{ available: boolean; preloaded: boolean; cron_database: string | null; current: string }[]>`
    select
      exists (select 1 from pg_available_extensions where name = 'pg_cron') as available,
      'pg_cron' = any (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) as preloaded,
      current_setting('cron.database_name', true) as cron_database,
      current_database() as current`;
  if (!row!.available) return "the pg_cron extension is not installed on this PostgreSQL server";
  if (!row!.preloaded) return "pg_cron is not in shared_preload_libraries";
  if (row!.cron_database !== row!.current) {
    return `cron.database_name is ${row!.cron_database ?? "unset"}, not the admin database ${row!.current}`;
  }
  return null;
}

/**
 * Stand-ins for pg_net and Vault, which cannot be installed on this PostgreSQL. They have the
 * real names and signatures (net.http_post, vault.decrypted_secrets), but http_post records
 * its arguments instead of sending a request.
 */
async function installStandIns(tx: TransactionSql): Promise<void> {
  await tx.unsafe(`
    create schema net;
    create table net.recorded_requests (url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer);
    create function net.http_post(url text, body jsonb default '{}'::jsonb, params jsonb default '{}'::jsonb,
                                  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
                                  timeout_milliseconds integer default 5000)
      returns bigint language sql as $$
        insert into net.recorded_requests values (url, body, params, headers, timeout_milliseconds);
        select 1::bigint
      $$;
  `);
}

async function installVaultStandIn(tx: TransactionSql): Promise<void> {
  await tx.unsafe(`
    create schema vault;
    create table vault.decrypted_secrets (id uuid primary key default gen_random_uuid(), name text unique, decrypted_secret text);
  `);
  await tx`
    insert into vault.decrypted_secrets (name, decrypted_secret)
    values ('berth_project_url', ${PROJECT_URL}), ('berth_service_role_key', ${SERVICE_ROLE_KEY})`;
}

interface ScheduleOutcome {
  withoutVault: string | null;
  jobId: string;
  jobs: { jobname: string; schedule: string; command: string; database: string }[];
  requests: { url: string; headers: Record<string, string>; timeout_milliseconds: number }[];
}

class Rollback extends Error {
  constructor(readonly outcome: ScheduleOutcome) {
    super("roll back the schedule test");
  }
}

describe("reconcile schedule", () => {
  test("pg_cron job posts to the reconcile function", async (context) => {
    const sql = postgres(inject("adminDatabaseUrl"), { max: 1, onnotice: () => {} });
    try {
      const reason = await pgCronUnavailableReason(sql);
      if (reason) {
        if (process.env.BERTH_REQUIRE_PG_CRON === "1") {
          throw new Error(`BERTH_REQUIRE_PG_CRON=1 but pg_cron cannot run here: ${reason}`);
        }
        process.stderr.write(`[reconcile schedule] skipped: ${reason}\n`);
        context.skip(reason);
      }

      const migration = await readFile(SCHEDULE_MIGRATION, "utf8");
      // Everything happens in one transaction that is rolled back, because this is the server's
      // shared admin database and the migrations are not applied there.
      const outcome = await sql
        .begin(async (tx) => {
          await tx`create extension if not exists pg_cron`;
          await tx`create schema if not exists berth_private`;
          await installStandIns(tx);
          await tx.unsafe(migration);

          const [withoutVault] = await tx<{ job_id: string | null }[]>`select berth_private.schedule_reconcile() as job_id`;
          await installVaultStandIn(tx);
          const [scheduled] = await tx<{ job_id: string }[]>`select berth_private.schedule_reconcile() as job_id`;
          await tx`select berth_private.schedule_reconcile()`;

          const jobs = await tx<ScheduleOutcome["jobs"]>`
            select jobname, schedule, command, database from cron.job where jobname = 'berth-reconcile'`;
          await tx.unsafe(jobs[0]!.command);
          const requests = await tx<ScheduleOutcome["requests"]>`select url, headers, timeout_milliseconds from net.recorded_requests`;

          throw new Rollback({ withoutVault: withoutVault!.job_id, jobId: scheduled!.job_id, jobs, requests });
        })
        .catch((error: unknown) => {
          if (error instanceof Rollback) return error.outcome;
          throw error;
        });

      expect(outcome.withoutVault).toBeNull();
      expect(outcome.jobId).not.toBeNull();
      expect(outcome.jobs).toHaveLength(1);
      const job = outcome.jobs[0]!;
      expect(job.schedule).toBe("* * * * *");
      expect(job.database).toBe("postgres");
      expect(job.command).toContain("/functions/v1/reconcile");
      expect(job.command).toContain("timeout_milliseconds := 55000");
      expect(job.command).not.toContain(SERVICE_ROLE_KEY);

      expect(outcome.requests).toHaveLength(1);
      const request = outcome.requests[0]!;
      expect(request.url).toBe("https://project-ref.supabase.test/functions/v1/reconcile");
      expect(request.headers.Authorization).toBe(`Bearer ${SERVICE_ROLE_KEY}`);
      expect(request.timeout_milliseconds).toBe(55000);
    } finally {
      await sql.end();
    }
  });

  test("admin database is left unchanged", async () => {
    const sql = postgres(inject("adminDatabaseUrl"), { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql<{ schema: string | null }[]>`select to_regnamespace('berth_private')::text as schema`;
      expect(row!.schema).toBeNull();
    } finally {
      await sql.end();
    }
  });
});

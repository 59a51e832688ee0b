import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { applyMigrations, bootstrapSupabase } from "../../stack/migrations.ts";
import { freePort } from "../../stack/net.ts";
import { startPostgres, withDatabase, type PostgresHandle } from "../../stack/postgres.ts";

export interface BenchDatabase {
  /** Superuser URL of the benchmark's own migrated database. */
  url: string;
  /** Server version as PostgreSQL reports it, for the printed figures. */
  serverVersion: string;
  kind: PostgresHandle["kind"];
  drop(): Promise<void>;
}

/**
 * Creates a database of its own on the server at DATABASE_URL, or on an embedded PostgreSQL
 * started for the run, with the Supabase bootstrap and every migration applied.
 */
export async function createBenchDatabase(log: (line: string) => void): Promise<BenchDatabase> {
  const server = await startPostgres({ port: await freePort() });
  const name = `berth_bench_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} });

  try {
    await admin.unsafe(`create database ${name}`);
    const [row] = await admin<{ version: string }[]>`select current_setting('server_version') as version`;
    const url = withDatabase(server.adminUrl, name);
    log(`database ${name} on ${server.kind === "external" ? "DATABASE_URL" : "embedded PostgreSQL"} ${row!.version}`);

    await bootstrapSupabase(url);
    await applyMigrations(url);
    return { url, serverVersion: row!.version, kind: server.kind, drop: () => dropDatabase(server, name) };
  } finally {
    await admin.end();
  }
}

async function dropDatabase(server: PostgresHandle, name: string): Promise<void> {
  const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
  } finally {
    await admin.end();
  }
  await server.stop();
}

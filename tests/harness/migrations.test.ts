import { cp, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { describe, expect, inject, test } from "vitest";
import { MIGRATIONS_DIR } from "../../stack/paths.ts";
import { applyMigrations, bootstrapSupabase, MigrationError } from "../../stack/migrations.ts";
import { withDatabase } from "../../stack/postgres.ts";
import { useTestDatabase } from "../support/db.ts";

const getDb = useTestDatabase();

async function withEmptyDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const adminUrl = inject("adminDatabaseUrl");
  const name = `berth_scratch_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  try {
    return await fn(withDatabase(adminUrl, name));
  } finally {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

describe("migrations", () => {
  test("template has every migration applied", async () => {
    const { sql } = getDb();
    const files = (await readdir(MIGRATIONS_DIR)).filter((file) => file.endsWith(".sql")).sort();
    const rows = await sql<{ version: string }[]>`select version from supabase_migrations.schema_migrations order by version`;

    expect(files.length).toBeGreaterThan(0);
    expect(rows.map((row) => row.version)).toEqual(files.map((file) => file.split("_")[0]));
  });

  test("syntax error names the file and the SQL error", async () => {
    const workdir = await mkdtemp(path.join(os.tmpdir(), "berth-broken-"));
    try {
      await cp(MIGRATIONS_DIR, path.join(workdir, "supabase", "migrations"), { recursive: true });
      const broken = "99991231235959_broken_on_purpose.sql";
      await writeFile(path.join(workdir, "supabase", "migrations", broken), "create tabel public.oops (id int);\n");

      const error = await withEmptyDatabase(async (url) => {
        await bootstrapSupabase(url);
        return applyMigrations(url, workdir).then(
          () => undefined,
          (caught: unknown) => caught,
        );
      });

      expect(error).toBeInstanceOf(MigrationError);
      expect((error as Error).message).toContain(broken);
      expect((error as Error).message).toContain('syntax error at or near "tabel"');
    } finally {
      await rm(workdir, { recursive: true, force: true });
    }
  });
});

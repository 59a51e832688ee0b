import { execFile } from "node:child_process";
import { promisify } from "node:util";
import postgres from "postgres";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT, npmBin } from "./paths.ts";

const execFileAsync = promisify(execFile);

/** Error raised when the Supabase CLI cannot apply the migrations; carries the CLI's output. */
export class MigrationError extends Error {
  override name = "MigrationError";
}

/**
 * Runs the bootstrap that gives a plain PostgreSQL database what Supabase provides (API roles,
 * the auth schema and its claim helpers, the extensions schema, the realtime publication).
 */
export async function bootstrapSupabase(databaseUrl: string): Promise<void> {
  const script = await readFile(path.join(REPO_ROOT, "stack", "supabase-bootstrap.sql"), "utf8");
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(script);
  } finally {
    await sql.end();
  }
}

/**
 * Applies `<workdir>/supabase/migrations` to the database with `supabase db push`, the same
 * command used against a hosted project, so the migration history table matches too.
 */
export async function applyMigrations(databaseUrl: string, workdir: string = REPO_ROOT): Promise<string> {
  const url = new URL(databaseUrl);
  url.searchParams.set("sslmode", "disable");

  const args = ["db", "push", "--db-url", url.toString(), "--yes", "--workdir", workdir];
  try {
    const { stdout, stderr } = await execFileAsync(npmBin("supabase"), args, {
      env: { ...process.env, SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" },
      maxBuffer: 16 * 1024 * 1024,
    });
    return `${stdout}${stderr}`;
  } catch (error) {
    const output = error as { stdout?: string; stderr?: string };
    const detail = `${output.stdout ?? ""}${output.stderr ?? ""}`.trim();
    throw new MigrationError(`supabase db push failed for ${workdir}/supabase/migrations:\n${detail}`);
  }
}

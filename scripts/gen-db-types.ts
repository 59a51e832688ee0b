// `npm run gen:types`: writes packages/client/src/database.types.ts from the migrations.
// `supabase gen types` needs Docker, so this applies the migrations to a scratch database of its
// own (embedded PostgreSQL, or the server at DATABASE_URL) and reads the catalog instead.
import { randomUUID } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { generateDatabaseTypes } from "../packages/client/typegen/index.ts";
import { applyMigrations, bootstrapSupabase } from "../stack/migrations.ts";
import { freePort } from "../stack/net.ts";
import { REPO_ROOT } from "../stack/paths.ts";
import { startPostgres, withDatabase } from "../stack/postgres.ts";

const DEFAULT_OUT = path.join(REPO_ROOT, "packages", "client", "src", "database.types.ts");

const USAGE = `usage: npm run gen:types -- [--db-url URL] [--out FILE] [--check]

  --db-url URL  read an already migrated database instead of building a scratch one
  --out FILE    file to write (default packages/client/src/database.types.ts)
  --check       write nothing; exit 1 when FILE differs from the generated types`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { "db-url": { type: "string" }, out: { type: "string" }, check: { type: "boolean", default: false }, help: { type: "boolean", default: false } },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const out = path.resolve(values.out ?? DEFAULT_OUT);
  const types = values["db-url"] ? await generateDatabaseTypes(values["db-url"]) : await generateFromMigrations();

  if (values.check) return checkFile(out, types);
  await writeFile(out, types);
  process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
  return 0;
}

/** Builds a scratch database the way the test stack builds its template, then reads it. */
async function generateFromMigrations(): Promise<string> {
  const server = await startPostgres({ port: await freePort() });
  const name = `berth_typegen_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
    const url = withDatabase(server.adminUrl, name);
    await bootstrapSupabase(url);
    await applyMigrations(url);
    return await generateDatabaseTypes(url);
  } finally {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
    await server.stop();
  }
}

async function checkFile(file: string, expected: string): Promise<number> {
  const current = await readFile(file, "utf8").catch(() => "");
  if (current === expected) {
    process.stdout.write(`${path.relative(process.cwd(), file)} is up to date\n`);
    return 0;
  }
  process.stderr.write(`error: ${path.relative(process.cwd(), file)} does not match the migrations. Run \`npm run gen:types\` and commit the result.\n`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`error: generating database types failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);

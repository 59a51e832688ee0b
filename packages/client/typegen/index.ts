import postgres from "postgres";
import { readCatalog } from "./catalog.ts";
import { renderDatabaseTypes } from "./render.ts";

/**
 * Generates `database.types.ts` for supabase-js from a live database by reading its catalog,
 * the job `supabase gen types typescript` does through a Docker container.
 */
export async function generateDatabaseTypes(databaseUrl: string, schema = "public"): Promise<string> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    return renderDatabaseTypes(await readCatalog(sql, schema));
  } finally {
    await sql.end();
  }
}

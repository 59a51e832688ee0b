import postgres from "postgres";

export type Sql = postgres.Sql;

/**
 * Opens the database client of a function. Prepared statements are off because Supabase's
 * transaction pooler (port 6543) does not keep them between transactions.
 */
export function createSql(databaseUrl: string, options: { max?: number } = {}): Sql {
  return postgres(databaseUrl, {
    prepare: false,
    max: options.max ?? 4,
    idle_timeout: 20,
    connect_timeout: 10,
    onnotice: () => {},
  });
}

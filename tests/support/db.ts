import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, inject } from "vitest";
import postgres, { type Sql, type TransactionSql } from "postgres";
import { withDatabase } from "../../stack/postgres.ts";
import { verifyJwt } from "../../stack/jwt.ts";

export interface TestDatabase {
  name: string;
  /** Superuser URL of this test file's own database. */
  url: string;
  /** Superuser client: bypasses RLS, for arranging data and reading the truth. */
  sql: Sql;
}

/** Creates a database cloned from the migrated template, private to the caller. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject("adminDatabaseUrl");
  const name = `berth_test_${randomUUID().replaceAll("-", "").slice(0, 16)}`;

  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name} template ${inject("templateDatabase")}`);
  } finally {
    await admin.end();
  }

  const url = withDatabase(adminUrl, name);
  return { name, url, sql: postgres(url, { onnotice: () => {} }) };
}

/** Closes the client and drops the database, ending any session still connected to it. */
export async function dropTestDatabase(db: TestDatabase): Promise<void> {
  await db.sql.end({ timeout: 5 });
  const admin = postgres(inject("adminDatabaseUrl"), { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${db.name} with (force)`);
  } finally {
    await admin.end();
  }
}

/**
 * Gives the calling test file a fresh database for all its tests. Call at the top level of a
 * test file; the returned function is valid inside tests and hooks.
 */
export function useTestDatabase(): () => TestDatabase {
  let db: TestDatabase | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    if (db) await dropTestDatabase(db);
  });
  return () => {
    if (!db) throw new Error("useTestDatabase() is only usable inside tests and hooks");
    return db;
  };
}

/** Inserts a user into auth.users the way Supabase Auth does at sign-up; returns its id. */
export async function createUser(sql: Sql, email = `${randomUUID()}@example.test`): Promise<string> {
  const id = randomUUID();
  await sql`insert into auth.users (id, email) values (${id}, ${email})`;
  return id;
}

/**
 * Runs `fn` in a transaction as PostgREST does for a request carrying `token`: the token is
 * verified, the transaction switches to the token's role and the claims are stored in
 * `request.jwt.claims`. The transaction commits when `fn` resolves, as a request would.
 */
export async function asJwt<T>(sql: Sql, token: string, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  const claims = await verifyJwt(token);
  const result = await sql.begin(async (tx) => {
    await tx`select set_config('role', ${claims.role}, true), set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    return fn(tx);
  });
  return result as T;
}

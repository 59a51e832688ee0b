import type { TestProject } from "vitest/node";
import postgres from "postgres";
import { startPostgres, withDatabase, type PostgresHandle } from "../../stack/postgres.ts";
import { applyMigrations, bootstrapSupabase } from "../../stack/migrations.ts";
import { startEngine, type EngineHandle } from "../../stack/engine.ts";
import { freePort } from "../../stack/net.ts";

declare module "vitest" {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
    templateDatabase: string;
  }
}

function log(line: string): void {
  process.stderr.write(`[test stack] ${line}\n`);
}

/**
 * Starts what every suite shares once per run: PostgreSQL with a template database that has the
 * Supabase bootstrap and all migrations applied, and a container engine when one is available.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const pg = await startPostgres({ port: await freePort() });
  log(`PostgreSQL: ${pg.kind === "external" ? "DATABASE_URL" : "embedded server"}`);
  const template = `berth_template_${process.pid}`;
  let engine: EngineHandle | undefined;

  // A failure here skips vitest's teardown, so whatever started is stopped before rethrowing.
  try {
    await createTemplate(pg, template);
    project.provide("adminDatabaseUrl", pg.adminUrl);
    project.provide("templateDatabase", template);

    engine = await startEngine({ log });
    log(engine.dockerHost ? `container engine: ${engine.kind} at ${engine.dockerHost}` : `container engine: none (${engine.reason})`);
    project.provide("dockerHost", engine.dockerHost);
    project.provide("engineSkipReason", engine.reason ?? null);
  } catch (error) {
    await dropTemplate(pg, template).catch(() => {});
    await engine?.stop();
    await pg.stop();
    throw error;
  }

  const started = engine;
  return () => teardown(pg, started, template);
}

async function createTemplate(pg: PostgresHandle, template: string): Promise<void> {
  const admin = postgres(pg.adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${template} with (force)`);
    await admin.unsafe(`create database ${template}`);
  } finally {
    await admin.end();
  }

  const templateUrl = withDatabase(pg.adminUrl, template);
  await bootstrapSupabase(templateUrl);
  await applyMigrations(templateUrl);
}

async function teardown(pg: PostgresHandle, engine: EngineHandle, template: string): Promise<void> {
  await dropTemplate(pg, template);
  await engine.stop();
  await pg.stop();
}

async function dropTemplate(pg: PostgresHandle, template: string): Promise<void> {
  const admin = postgres(pg.adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${template} with (force)`);
  } finally {
    await admin.end();
  }
}

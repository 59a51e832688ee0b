// `npm start`: the whole control plane on one machine, without Docker Desktop or a Supabase
// account. Ports follow `supabase start`: API on 54321, PostgreSQL on 54322.
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import postgres from "postgres";
import { applyMigrations, bootstrapSupabase } from "../stack/migrations.ts";
import { startPostgres, type PostgresHandle } from "../stack/postgres.ts";
import { startEngine, type EngineHandle } from "../stack/engine.ts";
import { readFunctionSpecs, startFunctions, type RunningFunction } from "../stack/functions.ts";
import { startGateway, type Gateway } from "../stack/gateway.ts";
import { LOCAL_JWT_SECRET, mintAnonKey, mintServiceRoleKey, mintUserJwt } from "../stack/jwt.ts";
import { assertPortFree } from "../stack/ports.ts";
import { loadOrCreateDevSecrets, writeEnvFile } from "../stack/dev-secrets.ts";
import { REPO_ROOT } from "../stack/paths.ts";

const API_PORT = 54321;
const DB_PORT = 54322;
const STATE_DIR = path.join(REPO_ROOT, ".berth");
const DEV_USER_EMAIL = "dev@berth.local";

function log(part: string, line: string): void {
  process.stdout.write(`[${part}] ${line}\n`);
}

/**
 * Sends the server's own log to .berth/logs/postgres.log and prints only fatal lines, because
 * initdb and routine server output would bury the summary.
 */
function postgresLogger(): (line: string) => void {
  mkdirSync(path.join(STATE_DIR, "logs"), { recursive: true });
  const file = createWriteStream(path.join(STATE_DIR, "logs", "postgres.log"), { flags: "a" });
  return (line) => {
    file.write(`${line}\n`);
    if (/\b(FATAL|PANIC):/.test(line)) log("postgres", line);
  };
}

/** Everything started so far, stopped in reverse order on exit or failure. */
const stops: Array<{ name: string; stop: () => Promise<void> }> = [];

async function main(): Promise<void> {
  await assertPortFree(API_PORT, "127.0.0.1", "the functions API");
  if (!process.env.DATABASE_URL) await assertPortFree(DB_PORT, "127.0.0.1", "PostgreSQL");

  const db = await startDatabase();
  const devUserId = await ensureDevUser(db.adminUrl);
  const secrets = await loadOrCreateDevSecrets(STATE_DIR);
  const keys = { anon: await mintAnonKey(), serviceRole: await mintServiceRoleKey(), devUser: await mintUserJwt(devUserId, DEV_USER_EMAIL) };

  const engine = await startLocalEngine();
  const functionEnv = {
    SUPABASE_URL: `http://127.0.0.1:${API_PORT}`,
    SUPABASE_DB_URL: db.adminUrl,
    SUPABASE_ANON_KEY: keys.anon,
    SUPABASE_SERVICE_ROLE_KEY: keys.serviceRole,
    SUPABASE_JWT_SECRET: LOCAL_JWT_SECRET,
    BERTH_AGENT_TOKEN_SECRET: secrets.agentTokenSecret,
  };
  const functions = await startLocalFunctions(functionEnv);
  const gateway = await startLocalGateway(functions);

  const envFile = path.join(STATE_DIR, "dev.env");
  await writeEnvFile(envFile, {
    SUPABASE_URL: gateway.url,
    SUPABASE_ANON_KEY: keys.anon,
    SUPABASE_SERVICE_ROLE_KEY: keys.serviceRole,
    SUPABASE_DB_URL: db.adminUrl,
    BERTH_DEV_USER_JWT: keys.devUser,
    BERTH_LOCAL_TOOLBOX_ID: "",
    DOCKER_HOST: engine.dockerHost ?? "",
  });
  printSummary({ db, engine, functions, gateway, envFile });
}

async function startDatabase(): Promise<PostgresHandle> {
  const db = await startPostgres({
    port: DB_PORT,
    dataDir: path.join(STATE_DIR, "postgres", "data"),
    persistent: true,
    log: postgresLogger(),
  });
  stops.push({ name: "postgres", stop: () => db.stop() });

  log("postgres", `applying the Supabase bootstrap and migrations to ${db.kind === "external" ? "DATABASE_URL" : `127.0.0.1:${DB_PORT}`}`);
  await bootstrapSupabase(db.adminUrl);
  const output = await applyMigrations(db.adminUrl);
  for (const line of output.split("\n")) if (line.startsWith("Applying")) log("postgres", line);
  return db;
}

/** Creates the local development user on first start and returns its id. */
async function ensureDevUser(databaseUrl: string): Promise<string> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ id: string }[]>`
      insert into auth.users (id, email) values (gen_random_uuid(), ${DEV_USER_EMAIL})
      on conflict (email) do update set updated_at = now()
      returning id`;
    if (!row) throw new Error(`could not create the dev user ${DEV_USER_EMAIL}`);
    return row.id;
  } finally {
    await sql.end();
  }
}

async function startLocalEngine(): Promise<EngineHandle> {
  const engine = await startEngine({ runtimeDir: path.join(STATE_DIR, "engine"), log: (line) => log("engine", line) });
  stops.push({ name: "engine", stop: () => engine.stop() });
  log("engine", engine.dockerHost ? `${engine.kind} at ${engine.dockerHost}` : `none: ${engine.reason}`);
  return engine;
}

async function startLocalFunctions(env: Record<string, string>): Promise<RunningFunction[]> {
  const functions = await startFunctions(readFunctionSpecs(), { env, onOutput: (name, line) => log(`fn:${name}`, line) });
  for (const fn of functions) stops.push({ name: `function ${fn.name}`, stop: () => fn.server.stop() });
  return functions;
}

async function startLocalGateway(functions: RunningFunction[]): Promise<Gateway> {
  const gateway = await startGateway({
    port: API_PORT,
    jwtSecret: LOCAL_JWT_SECRET,
    routes: functions.map((fn) => ({ name: fn.name, verifyJwt: fn.verifyJwt, upstream: fn.server.url })),
  });
  stops.push({ name: "gateway", stop: () => gateway.stop() });
  return gateway;
}

function printSummary(parts: { db: PostgresHandle; engine: EngineHandle; functions: RunningFunction[]; gateway: Gateway; envFile: string }): void {
  const names = parts.functions.map((fn) => fn.name).join(", ") || "none yet";
  const lines = [
    "",
    "Berth is running.",
    `  API        ${parts.gateway.url}/functions/v1/<name>   (functions: ${names})`,
    `  Postgres   ${parts.db.kind === "external" ? "DATABASE_URL" : `postgres://postgres:postgres@127.0.0.1:${DB_PORT}/postgres`}`,
    `  Engine     ${parts.engine.dockerHost ?? `none (${parts.engine.reason})`}`,
    `  Keys       ${path.relative(process.cwd(), parts.envFile)}   (load with: set -a; . ${path.relative(process.cwd(), parts.envFile)}; set +a)`,
    "",
    "Press Ctrl-C to stop everything.",
    "",
  ];
  process.stdout.write(lines.join("\n"));
}

async function stopAll(): Promise<void> {
  for (const part of stops.reverse()) {
    try {
      await part.stop();
      log("berth", `stopped ${part.name}`);
    } catch (error) {
      log("berth", `failed to stop ${part.name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  stops.length = 0;
}

let stopping = false;
async function shutdown(exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await stopAll();
  process.exit(exitCode);
}

process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

main().catch(async (error: unknown) => {
  log("berth", `start failed: ${error instanceof Error ? error.message : String(error)}`);
  await shutdown(1);
});

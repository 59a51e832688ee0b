// `npm start`: the whole control plane on one machine, without Docker Desktop or a Supabase
// account. Ports follow `supabase start`: API on 54321, PostgreSQL on 54322.
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import { startDevStack, type DevStack } from "../stack/dev-stack.ts";
import { writeEnvFile } from "../stack/dev-secrets.ts";
import { formatLogLine } from "../stack/log-format.ts";
import { assertPortFree } from "../stack/ports.ts";
import { REPO_ROOT } from "../stack/paths.ts";

const API_PORT = 54321;
const DB_PORT = 54322;
const AGENT_PORT = Number(process.env.DTMA_PORT ?? 30000);
const RECONCILE_INTERVAL_MS = Number(process.env.BERTH_RECONCILE_INTERVAL_SECONDS ?? 15) * 1000;
const STATE_DIR = path.join(REPO_ROOT, ".berth");
const ENV_FILE = path.join(STATE_DIR, "dev.env");

function log(part: string, line: string): void {
  const formatted = formatLogLine(line);
  if (formatted !== null) process.stdout.write(`[${part}] ${formatted}\n`);
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

async function main(): Promise<DevStack> {
  await assertPortFree(API_PORT, "127.0.0.1", "the functions API");
  await assertPortFree(AGENT_PORT, "127.0.0.1", "the local agent (set DTMA_PORT to use another port)");
  if (!process.env.DATABASE_URL) await assertPortFree(DB_PORT, "127.0.0.1", "PostgreSQL");

  const postgresLog = postgresLogger();
  const stack = await startDevStack({
    apiPort: API_PORT,
    agentPort: AGENT_PORT,
    dbPort: DB_PORT,
    databaseUrl: process.env.DATABASE_URL,
    stateDir: STATE_DIR,
    reconcileIntervalMs: RECONCILE_INTERVAL_MS,
    log: (part, line) => (part === "postgres" && !line.startsWith("Applying") ? postgresLog(line) : log(part, line)),
  });

  await writeEnvFile(ENV_FILE, {
    SUPABASE_URL: stack.apiUrl,
    SUPABASE_ANON_KEY: stack.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: stack.serviceRoleKey,
    SUPABASE_DB_URL: stack.databaseUrl,
    BERTH_DEV_USER_JWT: stack.devUserJwt,
    BERTH_LOCAL_TOOLBOX_ID: stack.toolboxId,
    DOCKER_HOST: stack.dockerHost,
    DTMA_URL: stack.agent.url,
  });
  printSummary(stack);
  return stack;
}

function printSummary(stack: DevStack): void {
  const envFile = path.relative(process.cwd(), ENV_FILE);
  const lines = [
    "",
    "Berth is running.",
    `  API          ${stack.functionsUrl}/<name>   (${stack.functionNames.join(", ")})`,
    `  Postgres     ${stack.databaseKind === "external" ? "DATABASE_URL" : stack.databaseUrl}`,
    `  Agent        ${stack.agent.url}   (toolbox "local", id ${stack.toolboxId})`,
    `  Engine       ${stack.dockerHost}`,
    `  Reconciler   every ${RECONCILE_INTERVAL_MS / 1000} s`,
    `  Keys         ${envFile}   (load with: set -a; . ${envFile}; set +a)`,
    "",
    "Try it:  npm run demo        (a narrated walkthrough on a real MCP server)",
    "         npx berth ls        (your instances)",
    "Press Ctrl-C to stop everything.",
    "",
  ];
  process.stdout.write(lines.join("\n"));
}

let stopping = false;
const starting = main();

/** Stops the stack, waiting for a start still in progress so no child process is left behind. */
async function shutdown(exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  log("berth", "stopping");
  const stack = await starting.catch(() => undefined);
  await stack?.stop();
  log("berth", "stopped");
  process.exit(exitCode);
}

process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
process.on("SIGHUP", () => void shutdown(0));

starting.catch(async (error: unknown) => {
  log("berth", `start failed: ${error instanceof Error ? error.message : String(error)}`);
  await shutdown(1);
});

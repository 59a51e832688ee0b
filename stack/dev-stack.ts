import { chmod, mkdir } from "node:fs/promises";
import path from "node:path";
import postgres from "postgres";
import { ToolboxCreateResponse, ToolboxListResponse } from "@berth/shared";
import { startAgentSupervisor, type AgentSupervisor } from "./agent-process.ts";
import { loadOrCreateDevSecrets } from "./dev-secrets.ts";
import { startEngine } from "./engine.ts";
import { readFunctionSpecs, startFunctions } from "./functions.ts";
import { startGateway } from "./gateway.ts";
import { LOCAL_JWT_SECRET, mintAnonKey, mintServiceRoleKey, mintUserJwt } from "./jwt.ts";
import { applyMigrations, bootstrapSupabase } from "./migrations.ts";
import { startPostgres } from "./postgres.ts";
import { startReconcileLoop } from "./reconcile-loop.ts";

export const DEV_USER_EMAIL = "dev@berth.local";
export const LOCAL_TOOLBOX_NAME = "local";

export interface DevStackOptions {
  apiPort: number;
  agentPort: number;
  /** Folder for generated secrets, the engine socket and, for an embedded server, its data. */
  stateDir: string;
  /** Use this database instead of starting one; the bootstrap and migrations are still applied. */
  databaseUrl?: string;
  /** Port of the embedded PostgreSQL when neither `databaseUrl` nor DATABASE_URL is set. */
  dbPort?: number;
  /** Use this engine instead of finding or starting one. */
  dockerHost?: string;
  /** Interval of the reconciler loop; null runs no loop (callers invoke `/reconcile` themselves). */
  reconcileIntervalMs: number | null;
  log: (part: string, line: string) => void;
}

export interface DevStack {
  apiUrl: string;
  functionsUrl: string;
  databaseUrl: string;
  databaseKind: "embedded" | "external";
  dockerHost: string;
  functionNames: string[];
  anonKey: string;
  serviceRoleKey: string;
  devUserId: string;
  devUserJwt: string;
  toolboxId: string;
  agent: AgentSupervisor;
  stop(): Promise<void>;
}

/**
 * Starts the whole control plane on one machine: PostgreSQL, the edge functions behind a
 * Supabase-style gateway, a local agent registered as the dev user's toolbox through the
 * public API, and optionally the reconciler on an interval. Parts started before a failure
 * are stopped again before the error is raised.
 */
export async function startDevStack(options: DevStackOptions): Promise<DevStack> {
  const stops: Array<{ name: string; stop: () => Promise<void> }> = [];
  const stopAll = async () => {
    for (const part of stops.reverse()) {
      await part.stop().catch((error: unknown) => options.log("berth", `failed to stop ${part.name}: ${String(error)}`));
    }
    stops.length = 0;
  };

  try {
    return await startParts(options, stops, stopAll);
  } catch (error) {
    await stopAll();
    throw error;
  }
}

type Stops = Array<{ name: string; stop: () => Promise<void> }>;

async function startParts(options: DevStackOptions, stops: Stops, stopAll: () => Promise<void>): Promise<DevStack> {
  const db = await startDatabase(options, stops);
  const devUserId = await ensureLocalUser(db.url, DEV_USER_EMAIL);
  const secrets = await loadOrCreateDevSecrets(options.stateDir);
  const keys = { anonKey: await mintAnonKey(), serviceRoleKey: await mintServiceRoleKey(), devUserJwt: await mintUserJwt(devUserId, DEV_USER_EMAIL) };
  const dockerHost = await resolveEngine(options, stops);

  const apiUrl = `http://127.0.0.1:${options.apiPort}`;
  const functionEnv = {
    SUPABASE_URL: apiUrl,
    SUPABASE_DB_URL: db.url,
    SUPABASE_ANON_KEY: keys.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
    SUPABASE_JWT_SECRET: LOCAL_JWT_SECRET,
    BERTH_AGENT_TOKEN_SECRET: secrets.agentTokenSecret,
    // The local agent listens on 127.0.0.1, which the functions reject by default.
    BERTH_ALLOW_PRIVATE_AGENT_URLS: "true",
  };
  const functionNames = await startApi(options, functionEnv, stops);
  const functionsUrl = `${apiUrl}/functions/v1`;

  const registration = await registerLocalToolbox(functionsUrl, keys.devUserJwt, `http://127.0.0.1:${options.agentPort}`);
  const agent = await startAgentSupervisor({
    port: options.agentPort,
    env: {
      DTMA_TOKEN: registration.agent_token,
      DTMA_TOOLBOX_ID: registration.toolbox.id,
      DTMA_CONTROL_PLANE_URL: functionsUrl,
      DOCKER_HOST: dockerHost,
      DTMA_PUBLISH_IP: "127.0.0.1",
    },
    log: (line) => options.log("agent", line),
    pidFile: path.join(options.stateDir, "agent.pid"),
  });
  stops.push({ name: "agent", stop: () => agent.stop() });

  if (options.reconcileIntervalMs !== null) {
    const loop = startReconcileLoop({ functionsUrl, serviceRoleKey: keys.serviceRoleKey, intervalMs: options.reconcileIntervalMs, log: (line) => options.log("reconciler", line) });
    stops.push({ name: "reconciler loop", stop: () => loop.stop() });
  }

  return {
    apiUrl,
    functionsUrl,
    databaseUrl: db.url,
    databaseKind: db.kind,
    dockerHost,
    functionNames,
    ...keys,
    devUserId,
    toolboxId: registration.toolbox.id,
    agent,
    stop: stopAll,
  };
}

async function startDatabase(options: DevStackOptions, stops: Stops): Promise<{ url: string; kind: "embedded" | "external" }> {
  let url = options.databaseUrl;
  let kind: "embedded" | "external" = "external";
  if (url === undefined) {
    // Under root the embedded server runs as the `postgres` user, which must be able to enter
    // the state folder. A folder made by mkdtemp is private to root, so it is opened up here.
    await mkdir(options.stateDir, { recursive: true });
    if (process.getuid?.() === 0) await chmod(options.stateDir, 0o755);

    const server = await startPostgres({
      port: options.dbPort ?? 54322,
      dataDir: path.join(options.stateDir, "postgres", "data"),
      persistent: true,
      log: (line) => options.log("postgres", line),
    });
    stops.push({ name: "postgres", stop: () => server.stop() });
    url = server.adminUrl;
    kind = server.kind;
  }

  await bootstrapSupabase(url);
  const output = await applyMigrations(url);
  for (const line of output.split("\n")) if (line.startsWith("Applying")) options.log("postgres", line);
  return { url, kind };
}

/** Creates a local user with this email when there is none and returns the user's id. */
export async function ensureLocalUser(databaseUrl: string, email: string): Promise<string> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ id: string }[]>`
      insert into auth.users (id, email) values (gen_random_uuid(), ${email})
      on conflict (email) do update set updated_at = now()
      returning id`;
    if (!row) throw new Error(`could not create the local user ${email}`);
    return row.id;
  } finally {
    await sql.end();
  }
}

async function resolveEngine(options: DevStackOptions, stops: Stops): Promise<string> {
  if (options.dockerHost) return options.dockerHost;

  const engine = await startEngine({ runtimeDir: path.join(options.stateDir, "engine"), log: (line) => options.log("engine", line) });
  stops.push({ name: "engine", stop: () => engine.stop() });
  if (!engine.dockerHost) {
    throw new Error(`no container engine: ${engine.reason}. Install Docker or Podman (Debian: apt-get install podman runc) and start again.`);
  }
  return engine.dockerHost;
}

async function startApi(options: DevStackOptions, env: Record<string, string>, stops: Stops): Promise<string[]> {
  const functions = await startFunctions(readFunctionSpecs(), { env, onOutput: (name, line) => options.log(`fn:${name}`, line) });
  for (const fn of functions) stops.push({ name: `function ${fn.name}`, stop: () => fn.server.stop() });

  const gateway = await startGateway({
    port: options.apiPort,
    jwtSecret: LOCAL_JWT_SECRET,
    routes: functions.map((fn) => ({ name: fn.name, verifyJwt: fn.verifyJwt, upstream: fn.server.url })),
  });
  stops.push({ name: "gateway", stop: () => gateway.stop() });
  return functions.map((fn) => fn.name);
}

/**
 * Registers the local agent as the dev user's toolbox through the public API. Tokens are
 * returned only once, so on later starts the existing toolbox's token is rotated instead.
 */
async function registerLocalToolbox(functionsUrl: string, userJwt: string, agentUrl: string): Promise<ToolboxCreateResponse> {
  const headers = { authorization: `Bearer ${userJwt}`, "content-type": "application/json" };
  const list = ToolboxListResponse.parse(await callApi(`${functionsUrl}/toolboxes`, { headers }));
  const existing = list.toolboxes.find((toolbox) => toolbox.name === LOCAL_TOOLBOX_NAME && toolbox.status !== "decommissioned");

  if (existing) {
    return ToolboxCreateResponse.parse(await callApi(`${functionsUrl}/toolboxes/${existing.id}/rotate-token`, { method: "POST", headers }));
  }
  const body = JSON.stringify({ name: LOCAL_TOOLBOX_NAME, agent_url: agentUrl });
  return ToolboxCreateResponse.parse(await callApi(`${functionsUrl}/toolboxes`, { method: "POST", headers, body }));
}

async function callApi(url: string, init: RequestInit): Promise<unknown> {
  const response = await fetch(url, init);
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(`${init.method ?? "GET"} ${url} failed with ${response.status}: ${JSON.stringify(body)}`);
  }
  return body;
}

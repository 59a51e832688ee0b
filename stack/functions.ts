import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "smol-toml";
import { z } from "zod";
import { startDenoServer, type DenoServer } from "./deno.ts";
import { freePort } from "./net.ts";
import { FUNCTIONS_DIR, SUPABASE_DIR } from "./paths.ts";

const FunctionsConfig = z.object({
  functions: z.record(z.string(), z.object({ verify_jwt: z.boolean().default(true) })).default({}),
});

export interface FunctionSpec {
  name: string;
  /** Whether the gateway must see a valid project JWT before the request reaches the function. */
  verifyJwt: boolean;
}

/**
 * Reads the functions listed in `supabase/config.toml` that have an `index.ts`. Like the
 * Supabase CLI, `verify_jwt` defaults to true when a function has no section of its own.
 */
export function readFunctionSpecs(configPath = path.join(SUPABASE_DIR, "config.toml"), functionsDir = FUNCTIONS_DIR): FunctionSpec[] {
  const config = FunctionsConfig.parse(parse(readFileSync(configPath, "utf8")));
  return Object.entries(config.functions)
    .filter(([name]) => existsSync(path.join(functionsDir, name, "index.ts")))
    .map(([name, settings]) => ({ name, verifyJwt: settings.verify_jwt }));
}

export interface RunningFunction extends FunctionSpec {
  server: DenoServer;
}

/** Starts one Deno process per function, each with its own `deno.json`, on free loopback ports. */
export async function startFunctions(
  specs: FunctionSpec[],
  options: { env: Record<string, string>; functionsDir?: string; onOutput?: (name: string, line: string) => void },
): Promise<RunningFunction[]> {
  const functionsDir = options.functionsDir ?? FUNCTIONS_DIR;
  const running: RunningFunction[] = [];
  try {
    for (const spec of specs) {
      const dir = path.join(functionsDir, spec.name);
      const server = await startDenoServer({
        entry: path.join(dir, "index.ts"),
        config: path.join(dir, "deno.json"),
        port: await freePort(),
        env: options.env,
        onOutput: (line) => options.onOutput?.(spec.name, line),
      });
      running.push({ ...spec, server });
    }
  } catch (error) {
    await Promise.all(running.map((fn) => fn.server.stop()));
    throw error;
  }
  return running;
}

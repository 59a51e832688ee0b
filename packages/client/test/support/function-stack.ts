import { readFunctionSpecs, startFunctions, type RunningFunction } from "../../../../stack/functions.ts";
import { startGateway, type Gateway } from "../../../../stack/gateway.ts";
import { LOCAL_JWT_SECRET, mintAnonKey, mintServiceRoleKey } from "../../../../stack/jwt.ts";
import { freePort } from "../../../../stack/net.ts";

/** The agent token secret of these tests; agents derive their tokens from it. */
export const TEST_AGENT_TOKEN_SECRET = "berth-client-test-agent-token-secret-0123456789";

/** Functions the client calls. dtma-heartbeat is left out because only agents call it. */
const CLIENT_FUNCTIONS = new Set(["instances", "toolboxes", "reconcile"]);

export interface FunctionStack {
  /** Base URL as supabase-js takes it; functions are served under `/functions/v1/`. */
  url: string;
  anonKey: string;
  serviceRoleKey: string;
  /** Log lines the functions wrote, for checks that secrets never appear. */
  output: string[];
  stop(): Promise<void>;
}

/**
 * Serves the real instances, toolboxes and reconcile functions with Deno behind the local
 * Supabase-style gateway, against `databaseUrl`. Agent calls time out after
 * `agentTimeoutMs`, after which the functions return 202 and leave the rest to the reconciler.
 */
export async function startFunctionStack(databaseUrl: string, options: { agentTimeoutMs?: number } = {}): Promise<FunctionStack> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const serviceRoleKey = await mintServiceRoleKey();
  const output: string[] = [];

  const specs = readFunctionSpecs().filter((spec) => CLIENT_FUNCTIONS.has(spec.name));
  const functions: RunningFunction[] = await startFunctions(specs, {
    env: {
      SUPABASE_URL: url,
      SUPABASE_DB_URL: databaseUrl,
      SUPABASE_JWT_SECRET: LOCAL_JWT_SECRET,
      SUPABASE_SERVICE_ROLE_KEY: serviceRoleKey,
      BERTH_AGENT_TOKEN_SECRET: TEST_AGENT_TOKEN_SECRET,
      BERTH_AGENT_TIMEOUT_MS: String(options.agentTimeoutMs ?? 3000),
      BERTH_ALLOW_PRIVATE_AGENT_URLS: "true",
    },
    onOutput: (_name, line) => output.push(line),
  });

  let gateway: Gateway;
  try {
    const routes = functions.map((fn) => ({ name: fn.name, verifyJwt: fn.verifyJwt, upstream: fn.server.url }));
    gateway = await startGateway({ port, routes, jwtSecret: LOCAL_JWT_SECRET });
  } catch (error) {
    await Promise.all(functions.map((fn) => fn.server.stop()));
    throw error;
  }

  return {
    url,
    anonKey: await mintAnonKey(),
    serviceRoleKey,
    output,
    stop: async () => {
      await gateway.stop();
      await Promise.all(functions.map((fn) => fn.server.stop()));
    },
  };
}

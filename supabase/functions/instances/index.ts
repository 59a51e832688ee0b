import { createAgentClientFactory } from "../_shared/agents.ts";
import { createAuthenticator } from "../_shared/auth.ts";
import { createSql } from "../_shared/db.ts";
import { parseFunctionEnv } from "../_shared/env.ts";
import { createLogger } from "../_shared/log.ts";
import { createRegistry } from "../_shared/registry.ts";
import { createInstancesHandler } from "./handler.ts";

const env = parseFunctionEnv(Deno.env.toObject());

const handler = createInstancesHandler({
  registry: createRegistry(createSql(env.SUPABASE_DB_URL)),
  auth: createAuthenticator({ supabaseUrl: env.SUPABASE_URL, jwtSecret: env.SUPABASE_JWT_SECRET, serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY }),
  agents: createAgentClientFactory({
    tokenSecret: env.BERTH_AGENT_TOKEN_SECRET,
    timeoutMs: env.BERTH_AGENT_TIMEOUT_MS,
    allowPrivateAddresses: env.BERTH_ALLOW_PRIVATE_AGENT_URLS,
  }),
  logger: createLogger(),
  leaseTtlSeconds: env.BERTH_LEASE_TTL_SECONDS,
});

Deno.serve(handler);

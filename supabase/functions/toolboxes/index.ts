import { createAuthenticator } from "../_shared/auth.ts";
import { createSql } from "../_shared/db.ts";
import { parseFunctionEnv } from "../_shared/env.ts";
import { createLogger } from "../_shared/log.ts";
import { createRegistry } from "../_shared/registry.ts";
import { createToolboxesHandler } from "./handler.ts";

const env = parseFunctionEnv(Deno.env.toObject());

const handler = createToolboxesHandler({
  registry: createRegistry(createSql(env.SUPABASE_DB_URL)),
  auth: createAuthenticator({ supabaseUrl: env.SUPABASE_URL, jwtSecret: env.SUPABASE_JWT_SECRET, serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY }),
  logger: createLogger(),
  agentTokenSecret: env.BERTH_AGENT_TOKEN_SECRET,
  controlPlaneUrl: `${env.SUPABASE_URL.replace(/\/+$/, "")}/functions/v1`,
  allowPrivateAgentUrls: env.BERTH_ALLOW_PRIVATE_AGENT_URLS,
});

Deno.serve(handler);

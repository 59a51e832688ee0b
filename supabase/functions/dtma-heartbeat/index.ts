import { createSql } from "../_shared/db.ts";
import { parseFunctionEnv } from "../_shared/env.ts";
import { createLogger } from "../_shared/log.ts";
import { createRegistry } from "../_shared/registry.ts";
import { createHeartbeatHandler } from "./handler.ts";

const env = parseFunctionEnv(Deno.env.toObject());

const handler = createHeartbeatHandler({
  registry: createRegistry(createSql(env.SUPABASE_DB_URL)),
  logger: createLogger(),
  agentTokenSecret: env.BERTH_AGENT_TOKEN_SECRET,
});

Deno.serve(handler);

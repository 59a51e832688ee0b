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

// The local stack and the tests set PORT. On Supabase the edge runtime decides where to listen.
const port = Deno.env.get("PORT");
Deno.serve(port ? { port: Number(port), hostname: "127.0.0.1" } : {}, handler);

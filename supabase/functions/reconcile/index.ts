import { createAgentClientFactory } from "../_shared/agents.ts";
import { createAuthenticator } from "../_shared/auth.ts";
import { createSql } from "../_shared/db.ts";
import { createInstanceDriver } from "../_shared/driver.ts";
import { parseFunctionEnv } from "../_shared/env.ts";
import { createLogger } from "../_shared/log.ts";
import { parseReconcileConfig } from "../_shared/reconcile/config.ts";
import { createReconcilePass } from "../_shared/reconcile/pass.ts";
import { createReconcileStore } from "../_shared/reconcile/store.ts";
import { createRegistry } from "../_shared/registry.ts";
import { createReconcileHandler } from "./handler.ts";

const source = Deno.env.toObject();
const env = parseFunctionEnv(source);
const config = parseReconcileConfig(source);
const logger = createLogger({ function: "reconcile" });

const sql = createSql(env.SUPABASE_DB_URL);
const registry = createRegistry(sql);
const agents = createAgentClientFactory({
  tokenSecret: env.BERTH_AGENT_TOKEN_SECRET,
  timeoutMs: env.BERTH_AGENT_TIMEOUT_MS,
  allowPrivateAddresses: env.BERTH_ALLOW_PRIVATE_AGENT_URLS,
});
const driver = createInstanceDriver({ registry, agents, leaseTtlSeconds: env.BERTH_LEASE_TTL_SECONDS, logger });

const handler = createReconcileHandler({
  auth: createAuthenticator({ supabaseUrl: env.SUPABASE_URL, jwtSecret: env.SUPABASE_JWT_SECRET, serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY }),
  pass: createReconcilePass({ store: createReconcileStore(sql), registry, driver, agents, config, logger }),
  logger,
});

Deno.serve(handler);

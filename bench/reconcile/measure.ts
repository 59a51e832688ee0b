import { performance } from "node:perf_hooks";
import postgres from "postgres";
import type { ReconcileRunResponse } from "../../packages/shared/src/index.ts";
import { createAgentClientFactory } from "../../supabase/functions/_shared/agents.ts";
import { createInstanceDriver } from "../../supabase/functions/_shared/driver.ts";
import { createLogger } from "../../supabase/functions/_shared/log.ts";
import type { ReconcileConfig } from "../../supabase/functions/_shared/reconcile/config.ts";
import { cachedClients, fetchInventories } from "../../supabase/functions/_shared/reconcile/executor.ts";
import { createReconcilePass, type ReconcilePass } from "../../supabase/functions/_shared/reconcile/pass.ts";
import { createReconcileStore, type ReconcileStore } from "../../supabase/functions/_shared/reconcile/store.ts";
import { createRegistry } from "../../supabase/functions/_shared/registry.ts";

export const TOKEN_SECRET = "bench-agent-token-secret-of-enough-length";
const AGENT_TIMEOUT_MS = 10_000;

/** A database client like the function's own (`createSql`), which also counts the statements it sends. */
export interface CountingSql {
  sql: postgres.Sql;
  statements(): number;
}

export function createCountingSql(url: string): CountingSql {
  let count = 0;
  const sql = postgres(url, {
    prepare: false,
    max: 4,
    idle_timeout: 20,
    connect_timeout: 10,
    onnotice: () => {},
    debug: () => {
      count += 1;
    },
  });
  return { sql, statements: () => count };
}

export interface PassFigures {
  label: string;
  response: ReconcileRunResponse;
  wallMs: number;
  cpuMs: number;
  statements: number;
  instanceRowsWritten: number;
  toolboxRowsWritten: number;
  eventsAppended: number;
}

/**
 * Runs one pass and measures wall time, this process's CPU time, statements and rows written.
 * The runner is shared between passes as the function shares it between invocations of one
 * instance, so the first pass pays for deriving every agent token and later ones do not.
 */
export async function measurePass(label: string, counting: CountingSql, observer: postgres.Sql, pass: ReconcilePass): Promise<PassFigures> {
  const [mark] = await observer<{ at: Date }[]>`select clock_timestamp() as at`;
  const statementsBefore = counting.statements();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();

  for (const name of Object.keys(storeTimes)) delete storeTimes[name];
  const response = await pass.run();
  const waits = Object.entries(storeTimes).map(([name, ms]) => `${name} ${Math.round(ms)}`);
  process.stderr.write(`[bench] ${label}: ms spent in each store method: ${waits.join(", ")}\n`);

  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  if (response.status === "skipped") throw new Error(`the ${label} pass was skipped: the run lease is held by ${response.holder}`);
  const [rows] = await observer<{ instances: number; toolboxes: number; events: number }[]>`
    select (select count(*)::int from public.tool_instances where updated_at >= ${mark!.at}) as instances,
           (select count(*)::int from public.toolboxes where updated_at >= ${mark!.at}) as toolboxes,
           (select count(*)::int from public.instance_events where created_at >= ${mark!.at}) as events`;

  return {
    label,
    response,
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    statements: counting.statements() - statementsBefore,
    instanceRowsWritten: rows!.instances,
    toolboxRowsWritten: rows!.toolboxes,
    eventsAppended: rows!.events,
  };
}

/** Builds the pass runner as the function's index.ts does. */
export function createPass(sql: postgres.Sql, config: ReconcileConfig): ReconcilePass {
  const logger = createLogger({}, () => {});
  const registry = createRegistry(sql);
  const agents = createAgentClientFactory({ tokenSecret: TOKEN_SECRET, timeoutMs: AGENT_TIMEOUT_MS, allowPrivateAddresses: true });
  const driver = createInstanceDriver({ registry, agents, leaseTtlSeconds: 30, logger });
  return createReconcilePass({ store: timedStore(createReconcileStore(sql)), registry, driver, agents, config, logger });
}

/** Milliseconds spent in each store method since the last reset, to show where a pass waits. */
export const storeTimes: Record<string, number> = {};

function timedStore(store: ReconcileStore): ReconcileStore {
  const timed = {} as Record<string, unknown>;
  for (const [name, method] of Object.entries(store)) {
    timed[name] = async (...args: unknown[]) => {
      const started = performance.now();
      try {
        return await (method as (...values: unknown[]) => Promise<unknown>)(...args);
      } finally {
        storeTimes[name] = (storeTimes[name] ?? 0) + performance.now() - started;
      }
    };
  }
  return timed as unknown as ReconcileStore;
}

export interface FetchOnlyFigures {
  wallMs: number;
  cpuMs: number;
  reachable: number;
}

/**
 * Fetches every toolbox's inventory once with the pass's concurrency and nothing else. The
 * agent clients are created before the clock starts, as a warm pass runner has them cached.
 */
export async function measureFetchOnly(observer: postgres.Sql, config: ReconcileConfig): Promise<FetchOnlyFigures> {
  const toolboxes = await observer`select * from public.toolboxes where status <> 'decommissioned'`;
  const clientFor = cachedClients(createAgentClientFactory({ tokenSecret: TOKEN_SECRET, timeoutMs: AGENT_TIMEOUT_MS, allowPrivateAddresses: true }));
  await Promise.all(toolboxes.map((toolbox) => clientFor(toolbox as never)));
  const cpuBefore = process.cpuUsage();
  const started = performance.now();

  const fetched = await fetchInventories(toolboxes as never, clientFor, config.fetchConcurrency);

  const cpu = process.cpuUsage(cpuBefore);
  return { wallMs: performance.now() - started, cpuMs: (cpu.user + cpu.system) / 1000, reachable: fetched.filter((entry) => entry.reachable).length };
}

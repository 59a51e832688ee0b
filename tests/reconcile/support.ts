import { randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Sql } from "postgres";
import { DockerEngine, createLogger as createAgentLogger, loadConfig, serveAgent, type RunningAgent } from "../../packages/dtma/src/index.ts";
import { LABEL_TOOLBOX_ID, type InstanceObservation } from "../../packages/shared/src/index.ts";
import { freePort } from "../../stack/net.ts";
import { deriveAgentToken } from "../../supabase/functions/_shared/agent-token.ts";
import { createAgentClientFactory, type AgentClientFactory } from "../../supabase/functions/_shared/agents.ts";
import { createDtmaClient } from "../../supabase/functions/_shared/dtma-client.ts";
import { createInstanceDriver, type InstanceDriver } from "../../supabase/functions/_shared/driver.ts";
import { createLogger } from "../../supabase/functions/_shared/log.ts";
import { parseReconcileConfig } from "../../supabase/functions/_shared/reconcile/config.ts";
import { createReconcilePass, type ReconcilePass } from "../../supabase/functions/_shared/reconcile/pass.ts";
import { createReconcileStore, type ReconcileStore } from "../../supabase/functions/_shared/reconcile/store.ts";
import { createRegistry, type InstanceRow, type Registry, type ToolboxRow } from "../../supabase/functions/_shared/registry.ts";
import { removeLabeledContainers, type TestEngine } from "../support/engine.ts";

export const AGENT_TOKEN_SECRET = "reconcile-test-agent-token-secret-of-enough-length";

/**
 * Reconciler settings for tests: short deadlines so stuck transitions, orphans and crash loops
 * show up within seconds, and a failure threshold of 3 as in production.
 */
export const TEST_RECONCILE_ENV: Record<string, string> = {
  BERTH_RECONCILE_BATCH_SIZE: "10",
  BERTH_RECONCILE_STUCK_AFTER_SECONDS: "2",
  BERTH_RECONCILE_ORPHAN_GRACE_SECONDS: "0",
  BERTH_RECONCILE_MAX_RESTART_ATTEMPTS: "2",
  BERTH_RECONCILE_BACKOFF_BASE_SECONDS: "1",
  BERTH_RECONCILE_BACKOFF_MAX_SECONDS: "2",
  BERTH_RECONCILE_FAILURE_THRESHOLD: "3",
};

export interface Reconciler {
  registry: Registry;
  driver: InstanceDriver;
  pass: ReconcilePass;
  logLines: string[];
}

/** Wrappers that let a test act between two steps of a pass, such as after an inventory fetch. */
export interface PassSeams {
  /** Wraps the agent clients of the pass; the driver's own clients stay unwrapped. */
  wrapAgents?: (agents: AgentClientFactory) => AgentClientFactory;
  wrapStore?: (store: ReconcileStore) => ReconcileStore;
}

/** Builds the reconciler as the reconcile function does, on the test database, with captured logs. */
export function createReconciler(sql: Sql, env: Record<string, string> = {}, seams: PassSeams = {}): Reconciler {
  const logLines: string[] = [];
  const logger = createLogger({}, (line) => logLines.push(line));
  const registry = createRegistry(sql);
  const agents = createAgentClientFactory({ tokenSecret: AGENT_TOKEN_SECRET, timeoutMs: 5_000, allowPrivateAddresses: true });
  const driver = createInstanceDriver({ registry, agents, leaseTtlSeconds: 30, logger });
  const config = parseReconcileConfig({ ...TEST_RECONCILE_ENV, ...env });
  const store = createReconcileStore(sql);
  const pass = createReconcilePass({
    store: seams.wrapStore?.(store) ?? store,
    registry,
    driver,
    agents: seams.wrapAgents?.(agents) ?? agents,
    config,
    logger,
  });
  return { registry, driver, pass, logLines };
}

export interface ToolboxAgent {
  toolbox: ToolboxRow;
  url: string;
  /** Starts the agent (again) on the toolbox's port. */
  start(): Promise<void>;
  /** Stops the agent; its containers keep running. */
  stop(): Promise<void>;
  /** Force-removes every container the agent created for this toolbox. */
  cleanup(): Promise<void>;
}

/**
 * Registers a toolbox whose agent is the real DTMA, served in this process on a free loopback
 * port and scoped to the toolbox by DTMA_TOOLBOX_ID, so it never lists other suites' containers.
 * Host ports come from a random range so parallel suites rarely compete for one.
 */
export async function createToolboxAgent(sql: Sql, registry: Registry, engine: TestEngine, ownerId: string): Promise<ToolboxAgent> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const rangeStart = 20_000 + randomInt(0, 400) * 100;
  const [row] = await sql<{ id: string }[]>`
    select id from berth_private.create_toolbox(${ownerId}, ${`tb-${port}`}, ${url}, 30000, ${rangeStart}, ${rangeStart + 99})`;
  const toolbox = (await registry.getToolbox(row!.id))!;
  let running: RunningAgent | null = null;

  const start = async () => {
    const config = loadConfig({
      DTMA_TOKEN: await deriveAgentToken(AGENT_TOKEN_SECRET, toolbox.id, toolbox.token_version),
      DTMA_PORT: String(port),
      DTMA_TOOLBOX_ID: toolbox.id,
      DOCKER_HOST: engine.dockerHost,
      DTMA_STOP_TIMEOUT_SECONDS: "2",
      DTMA_SHUTDOWN_TIMEOUT_MS: "1000",
    });
    running = await serveAgent(config, new DockerEngine(config.docker, config.engineTimeoutMs), createAgentLogger("silent"));
  };
  const stop = async () => {
    await running?.close();
    running = null;
  };

  await start();
  return {
    toolbox,
    url,
    start,
    stop,
    cleanup: async () => {
      await stop();
      await removeLabeledContainers(engine.docker, `${LABEL_TOOLBOX_ID}=${toolbox.id}`);
    },
  };
}

export interface DeployOptions {
  name: string;
  image: string;
  env?: Record<string, string>;
  secrets?: Record<string, string>;
  desiredState?: "running" | "stopped";
}

/** Creates an instance and drives it as the instances function does for a user's deploy. */
export async function deployInstance(reconciler: Reconciler, agent: ToolboxAgent, ownerId: string, options: DeployOptions): Promise<InstanceRow> {
  const created = await reconciler.registry.createInstance({
    ownerId,
    toolboxId: agent.toolbox.id,
    name: options.name,
    image: options.image,
    containerPort: 8080,
    env: options.env ?? {},
    secrets: options.secrets,
    desiredState: options.desiredState ?? "running",
  });
  const result = await reconciler.driver.drive(created, agent.toolbox, {
    action: "deploy",
    actor: "user",
    holder: `user:deploy-${created.id}`,
    reason: "DeployRequested",
  });
  return result.instance;
}

/** Reads the agent's inventory entry of one instance, or null when it reports no container. */
export async function observe(agent: ToolboxAgent, instanceId: string): Promise<InstanceObservation | null> {
  const token = await deriveAgentToken(AGENT_TOKEN_SECRET, agent.toolbox.id, agent.toolbox.token_version);
  const inventory = await createDtmaClient({ baseUrl: agent.url, token, timeoutMs: 10_000, allowPrivateAddresses: true }).inventory();
  return inventory.instances.find((entry) => entry.instance_id === instanceId) ?? null;
}

export interface EventRow {
  from_status: string | null;
  to_status: string;
  actor: string;
  reason_code: string | null;
  details: Record<string, unknown>;
}

/** Returns the events of an instance after event id `afterId`, oldest first. */
export async function eventsSince(sql: Sql, instanceId: string, afterId: number): Promise<EventRow[]> {
  return sql<EventRow[]>`
    select from_status, to_status, actor, reason_code, details
    from public.instance_events where instance_id = ${instanceId} and id > ${afterId} order by id`;
}

/** Returns the id of the newest event, so a test can look only at what comes after it. */
export async function lastEventId(sql: Sql): Promise<number> {
  const [row] = await sql<{ id: string | null }[]>`select max(id)::text as id from public.instance_events`;
  return Number(row!.id ?? 0);
}

/** Polls `check` until it returns a value other than undefined, or fails with `expectation`. */
export async function waitFor<T>(expectation: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value !== undefined) return value;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting until ${expectation}`);
}

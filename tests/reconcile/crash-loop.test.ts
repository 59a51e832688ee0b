import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ReconcileResponse, containerNameFor, type InstanceObservation } from "../../packages/shared/src/index.ts";
import { ensureImage } from "../../stack/images.ts";
import type { DtmaClient } from "../../supabase/functions/_shared/dtma-client.ts";
import type { InstanceDriver } from "../../supabase/functions/_shared/driver.ts";
import { createLogger } from "../../supabase/functions/_shared/log.ts";
import { parseReconcileConfig } from "../../supabase/functions/_shared/reconcile/config.ts";
import { repairInstance, type RepairContext } from "../../supabase/functions/_shared/reconcile/repair.ts";
import { createReconcileStore } from "../../supabase/functions/_shared/reconcile/store.ts";
import { createRegistry } from "../../supabase/functions/_shared/registry.ts";
import { createToolbox, insertInstanceInStatus } from "../db/fixtures.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { describeWithEngine } from "../support/engine.ts";
import {
  TEST_RECONCILE_ENV,
  createReconciler,
  createToolboxAgent,
  deployInstance,
  eventsSince,
  waitFor,
  type Reconciler,
  type ToolboxAgent,
} from "./support.ts";

/**
 * Inspects the instance's container for `stableMs` and returns its state, or null once it is
 * gone. Fails when the container runs or restarts within that time, or does not stop within
 * `timeoutMs`: a failed instance must not keep a restarting container.
 */
async function expectHalted(docker: Docker, instanceId: string, stableMs: number, timeoutMs = 10_000): Promise<Docker.ContainerInspectInfo | null> {
  const deadline = Date.now() + timeoutMs;
  let stableSince: { restartCount: number; startedAt: string; at: number } | null = null;

  while (Date.now() < deadline) {
    const inspected = await docker.getContainer(containerNameFor(instanceId)).inspect().catch(() => null);
    if (inspected === null) return null;

    const same = stableSince !== null && stableSince.restartCount === inspected.RestartCount && stableSince.startedAt === inspected.State.StartedAt;
    if (inspected.State.Running || !same) {
      stableSince = inspected.State.Running ? null : { restartCount: inspected.RestartCount, startedAt: inspected.State.StartedAt, at: Date.now() };
    } else if (Date.now() - stableSince!.at >= stableMs) {
      return inspected;
    }
    await sleep(100);
  }
  throw new Error(`the container of instance ${instanceId} did not stay stopped for ${stableMs} ms within ${timeoutMs} ms`);
}

describeWithEngine("reconciler with a crash loop", (engine) => {
  const getDb = useTestDatabase();
  let reconciler: Reconciler;
  let agent: ToolboxAgent;
  let ownerId: string;
  let image: string;

  beforeAll(async () => {
    const { sql } = getDb();
    image = await ensureImage(engine.dockerHost, "http-echo");
    ownerId = await createUser(sql);
    reconciler = createReconciler(sql);
    agent = await createToolboxAgent(sql, reconciler.registry, engine, ownerId);
  });

  afterAll(async () => {
    await agent?.cleanup();
  });

  test("crash log tail hides secrets", async () => {
    const { sql } = getDb();
    // http-echo prints an invalid ECHO_EXIT_CODE before it exits, so the secret reaches the log.
    const secret = `leaky-${randomUUID()}`;
    const deployed = await deployInstance(reconciler, agent, ownerId, { name: "leaky-crasher", image, secrets: { ECHO_EXIT_CODE: secret } });

    await waitFor("the instance is failed with CrashLoop", async () => {
      ReconcileResponse.parse(await reconciler.pass.run());
      const row = await reconciler.registry.getInstance(deployed.id);
      return row?.status === "failed" && row.status_reason_code === "CrashLoop" ? row : undefined;
    }, 45_000);
    const verdict = (await eventsSince(sql, deployed.id, 0)).filter((event) => event.reason_code === "CrashLoop");

    expect(verdict).toHaveLength(1);
    expect(String(verdict[0]!.details.log_tail)).toContain("invalid ECHO_EXIT_CODE");
    expect(String(verdict[0]!.details.log_tail)).toContain("[redacted]");
    expect(JSON.stringify(verdict[0]!.details)).not.toContain(secret);
  });

  test("exiting container ends failed", async () => {
    const { sql } = getDb();
    const deployed = await deployInstance(reconciler, agent, ownerId, { name: "crasher", image, env: { ECHO_EXIT_CODE: "3" } });

    // The container exits at once. Passes restart it under back-off (1 s, then 2 s), and the
    // engine's restart policy restarts it as well. Past 2 restarts of either kind it is failed.
    const failed = await waitFor("the instance is failed with CrashLoop", async () => {
      ReconcileResponse.parse(await reconciler.pass.run());
      const row = await reconciler.registry.getInstance(deployed.id);
      return row?.status === "failed" && row.status_reason_code === "CrashLoop" ? row : undefined;
    }, 45_000);
    const events = await eventsSince(sql, deployed.id, 0);
    const verdict = events.filter((event) => event.reason_code === "CrashLoop");
    const restarts = events.filter((event) => event.reason_code === "ContainerExited" && event.to_status === "starting");

    expect(failed.restart_attempts).toBeLessThanOrEqual(2);
    expect(restarts).toHaveLength(failed.restart_attempts);
    expect(verdict).toHaveLength(1);
    expect(verdict[0]!.actor).toBe("reconciler");
    expect(verdict[0]!.details.exit_code).toBe(3);
    expect(verdict[0]!.details.oom_killed).toBe(false);
    expect(String(verdict[0]!.details.log_tail)).toContain("ECHO_EXIT_CODE is set, exiting with code 3");

    // Failed with CrashLoop is final until the owner records new intent. The engine's restart
    // policy must not bring the container back, so it stays stopped or was removed.
    const container = await expectHalted(engine.docker, deployed.id, 3_000);
    expect(container === null).toBe(verdict[0]!.details.container_removed);
    const after = ReconcileResponse.parse(await reconciler.pass.run());
    expect(after.status).toBe("succeeded");
    expect(after.status === "skipped" ? null : after.repairs_made).toBe(0);
    const later = await engine.docker.getContainer(containerNameFor(deployed.id)).inspect().catch(() => null);
    expect(later?.State.StartedAt ?? null).toBe(container?.State.StartedAt ?? null);
  });
});

describe("crash-loop verdict on an engine that keeps restarting", () => {
  const getDb = useTestDatabase();

  /**
   * Creates an agent client whose engine behaves as Podman 4.3 does with a container that exits
   * at once: a stop between two restarts is a no-op, and the restart policy restarts the
   * container before every read. Only a removal ends the loop.
   */
  function restartingAgent(instanceId: string) {
    const calls: string[] = [];
    let restarts = 0;
    let removed = false;
    const observation = (state: string): InstanceObservation => ({
      instance_id: instanceId,
      container_id: "c".repeat(64),
      state,
      exit_code: 3,
      oom_killed: false,
      restart_count: restarts,
      generation: 1,
      host_port: 30001,
      started_at: new Date(Date.UTC(2026, 11, 4, 12, 0, restarts)).toISOString(),
      finished_at: null,
      health: null,
    });
    const unused = async (): Promise<never> => {
      throw new Error("not called by a crash-loop verdict");
    };
    const client: DtmaClient = {
      inventory: async () => {
        calls.push("inventory");
        restarts += 1;
        return { agent_version: "fake", engine_version: "fake", instances: removed ? [] : [observation("running")] };
      },
      stop: async () => {
        calls.push("stop");
        return observation("stopped");
      },
      remove: async () => {
        calls.push("remove");
        removed = true;
      },
      logs: async () => ({ instance_id: instanceId, container_id: "c".repeat(64), lines: [{ stream: "stdout", time: null, text: "exiting with code 3" }] }),
      ensure: unused,
      start: unused,
      restart: unused,
    };
    return { client, calls };
  }

  test("restarting container is removed", async () => {
    const { sql } = getDb();
    const registry = createRegistry(sql);
    const ownerId = await createUser(sql);
    const toolbox = (await registry.getToolbox((await createToolbox(sql, ownerId)).id))!;
    const row = (await registry.getInstance((await insertInstanceInStatus(sql, ownerId, toolbox.id, "running", 30001)).id))!;
    const agent = restartingAgent(row.id);
    const logLines: string[] = [];
    const context: RepairContext = {
      store: createReconcileStore(sql),
      registry,
      driver: {} as InstanceDriver,
      clientFor: async () => agent.client,
      config: parseReconcileConfig(TEST_RECONCILE_ENV),
      holder: "reconciler:crash-loop-test",
      logger: createLogger({}, (line) => logLines.push(line)),
    };
    const decision = { kind: "repair", action: "give_up", reason: "CrashLoop", message: "The container kept exiting." } as const;
    const evidence = { observation: null, recordedExitCode: 3 };

    const outcome = await repairInstance(context, row, toolbox, decision, evidence, row.version);
    const after = (await registry.getInstance(row.id))!;
    const [verdict] = await eventsSince(sql, row.id, 0).then((events) => events.filter((event) => event.reason_code === "CrashLoop"));

    expect(outcome).toBe("repaired");
    expect(agent.calls.filter((call) => call === "stop")).toHaveLength(3);
    expect(agent.calls.at(-1)).toBe("remove");
    expect(after.status).toBe("failed");
    expect(after.status_reason_code).toBe("CrashLoop");
    expect(after.container_id).toBeNull();
    expect(after.lease_nonce).toBeNull();
    expect(verdict!.details.container_removed).toBe(true);
    expect(verdict!.details.exit_code).toBe(3);
    expect(logLines.some((line) => line.includes("kept restarting after stop requests"))).toBe(true);
  });
});

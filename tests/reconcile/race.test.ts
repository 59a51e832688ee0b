import { afterAll, beforeAll, expect, test } from "vitest";
import { ReconcileResponse, type ReconcileRunResponse } from "../../packages/shared/src/index.ts";
import { ensureImage } from "../../stack/images.ts";
import type { AgentClientFactory } from "../../supabase/functions/_shared/agents.ts";
import type { ReconcileStore } from "../../supabase/functions/_shared/reconcile/store.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { describeWithEngine } from "../support/engine.ts";
import {
  createReconciler,
  createToolboxAgent,
  deployInstance,
  eventsSince,
  lastEventId,
  observe,
  type Reconciler,
  type ToolboxAgent,
} from "./support.ts";

// A pass reads each inventory before it records it and plans, and a user's request may finish in
// between. These tests run the user's stop at those two points, through seams in the pass's
// agent clients and store, and check that the pass leaves the changed row alone.

describeWithEngine("reconciler racing a user's request", (engine) => {
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

  /** Stops the instance as the instances function does: intent at the version read, then the driver. */
  async function userStop(instanceId: string): Promise<void> {
    const row = (await reconciler.registry.getInstance(instanceId))!;
    const intended = await reconciler.registry.recordIntent(instanceId, row.version, "stopped");
    const result = await reconciler.driver.drive(intended, agent.toolbox, { action: "stop", actor: "user", holder: `user:stop-${instanceId}`, reason: "StopRequested" });
    expect(result.outcome, "outcome of the user's stop").toBe("done");
  }

  async function runPass(racing: Reconciler): Promise<ReconcileRunResponse> {
    const response = ReconcileResponse.parse(await racing.pass.run());
    if (response.status === "skipped") throw new Error(`pass skipped, lease held by ${response.holder}`);
    return response;
  }

  async function transitionsSince(instanceId: string, afterId: number): Promise<string[]> {
    const events = await eventsSince(getDb().sql, instanceId, afterId);
    return events.map((event) => `${event.from_status} → ${event.to_status} ${event.actor} ${event.reason_code}`);
  }

  test("stop after inventory fetch is kept", async () => {
    const deployed = await deployInstance(reconciler, agent, ownerId, { name: "fetched-then-stopped", image });
    const mark = await lastEventId(getDb().sql);
    let raced = false;

    // The inventory shows the container running; the user's stop finishes before the pass records it.
    const afterFetch = (agents: AgentClientFactory): AgentClientFactory => async (toolbox) => {
      const client = await agents(toolbox);
      return {
        ...client,
        inventory: async () => {
          const inventory = await client.inventory();
          if (!raced) {
            raced = true;
            await userStop(deployed.id);
          }
          return inventory;
        },
      };
    };
    const racing = createReconciler(getDb().sql, {}, { wrapAgents: afterFetch });

    const pass = await runPass(racing);
    const row = (await reconciler.registry.getInstance(deployed.id))!;

    expect(raced).toBe(true);
    expect(row.status).toBe("stopped");
    expect(row.docker_state).toBe("exited");
    expect((await observe(agent, deployed.id))?.state).toBe("exited");
    expect(await transitionsSince(deployed.id, mark)).toEqual(["running → stopping user StopRequested", "stopping → stopped user ContainerStopped"]);
    expect(pass.repairs_made).toBe(0);
    expect(pass.instances_skipped).toBeGreaterThanOrEqual(1);

    const next = await runPass(reconciler);
    expect(next.drift_found, "drift found by the next pass").toBe(0);
  });

  test("stop after plan is kept", async () => {
    const deployed = await deployInstance(reconciler, agent, ownerId, { name: "planned-then-stopped", image });
    await engine.docker.getContainer(deployed.container_id!).stop({ t: 2 });
    const mark = await lastEventId(getDb().sql);
    let raced = false;

    // The plan restarts the exited container; the user's stop finishes after the repair read its row.
    const afterLoad = (store: ReconcileStore): ReconcileStore => ({
      ...store,
      loadInstances: async (ids) => {
        const rows = await store.loadInstances(ids);
        if (ids.includes(deployed.id)) {
          raced = true;
          await userStop(deployed.id);
        }
        return rows;
      },
    });
    const racing = createReconciler(getDb().sql, {}, { wrapStore: afterLoad });

    const pass = await runPass(racing);
    const row = (await reconciler.registry.getInstance(deployed.id))!;

    expect(raced).toBe(true);
    expect(row.status).toBe("stopped");
    expect(row.desired_state).toBe("stopped");
    expect(row.restart_attempts).toBe(0);
    expect((await observe(agent, deployed.id))?.state).toBe("exited");
    expect(await transitionsSince(deployed.id, mark)).toEqual(["running → stopping user StopRequested", "stopping → stopped user ContainerStopped"]);
    expect(pass.repairs_made).toBe(0);
    expect(racing.logLines.some((line) => line.includes("leaving it for the next pass") && line.includes(deployed.id))).toBe(true);
  });
});

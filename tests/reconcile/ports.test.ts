import net from "node:net";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { ReconcileResponse, type ReconcileRunResponse } from "../../packages/shared/src/index.ts";
import { ensureImage } from "../../stack/images.ts";
import { MAX_PORT_MOVES } from "../../supabase/functions/_shared/driver-actions.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { describeWithEngine } from "../support/engine.ts";
import {
  TEST_RECONCILE_ENV,
  createReconciler,
  createToolboxAgent,
  deployInstance,
  eventsSince,
  observe,
  waitFor,
  type Reconciler,
  type ToolboxAgent,
} from "./support.ts";

// Other programs on the host hold the first ports of a toolbox's range, as listeners on the
// agent's publish address (127.0.0.1), so the engine cannot bind them for a container.

const MAX_ATTEMPTS = Number(TEST_RECONCILE_ENV.BERTH_RECONCILE_MAX_RESTART_ATTEMPTS);

describeWithEngine("reconciler and taken host ports", (engine) => {
  const getDb = useTestDatabase();
  const holders: net.Server[] = [];
  const agents: ToolboxAgent[] = [];
  let reconciler: Reconciler;
  let ownerId: string;
  let image: string;

  beforeAll(async () => {
    image = await ensureImage(engine.dockerHost, "http-echo");
    ownerId = await createUser(getDb().sql);
    reconciler = createReconciler(getDb().sql);
  });

  afterEach(async () => {
    await Promise.all(holders.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  });

  afterAll(async () => {
    for (const agent of agents) await agent.cleanup();
  });

  /**
   * Creates a toolbox and listens on the first `count` ports of its range. A range with a port
   * that something else already uses (another suite's container) is given up for another one.
   */
  async function toolboxWithTakenPorts(count: number): Promise<ToolboxAgent> {
    for (let attempt = 1; ; attempt += 1) {
      const agent = await createToolboxAgent(getDb().sql, reconciler.registry, engine, ownerId);
      if (await holdPorts(agent.toolbox.port_range_start, count)) {
        agents.push(agent);
        return agent;
      }
      await agent.cleanup();
      await reconciler.registry.decommissionToolbox(agent.toolbox.id);
      if (attempt === 5) throw new Error(`found no toolbox range with ${count} free ports in 5 attempts`);
    }
  }

  /** Listens on `count` ports from `start`; returns false, holding none, when one is in use. */
  async function holdPorts(start: number, count: number): Promise<boolean> {
    const servers: net.Server[] = [];
    for (let port = start; port < start + count; port += 1) {
      const server = net.createServer();
      const listening = await new Promise<boolean>((resolve) => {
        server.once("error", () => resolve(false));
        server.listen(port, "127.0.0.1", () => resolve(true));
      });
      if (!listening) {
        await Promise.all(servers.map((taken) => new Promise<void>((resolve) => taken.close(() => resolve()))));
        return false;
      }
      servers.push(server);
    }
    holders.push(...servers);
    return true;
  }

  async function runPass(): Promise<ReconcileRunResponse> {
    const response = ReconcileResponse.parse(await reconciler.pass.run());
    if (response.status === "skipped") throw new Error(`pass skipped, lease held by ${response.holder}`);
    return response;
  }

  async function reconcilerEvents(instanceId: string): Promise<string[]> {
    const events = await eventsSince(getDb().sql, instanceId, 0);
    return events.filter((event) => event.actor === "reconciler").map((event) => `${event.from_status} → ${event.to_status} ${event.reason_code}`);
  }

  test("deploy failed on taken ports is moved", async () => {
    const agent = await toolboxWithTakenPorts(MAX_PORT_MOVES + 3);
    const start = agent.toolbox.port_range_start;

    const deployed = await deployInstance(reconciler, agent, ownerId, { name: "port-moved", image });
    expect(deployed.status).toBe("failed");
    expect(deployed.status_reason_code).toBe("PortInUse");
    expect(deployed.host_port).toBe(start + MAX_PORT_MOVES);

    const pass = await runPass();
    const row = (await reconciler.registry.getInstance(deployed.id))!;

    expect(pass.repairs_made).toBe(1);
    expect(row.status).toBe("running");
    expect(row.host_port).toBe(start + MAX_PORT_MOVES + 3);
    expect(row.restart_attempts).toBe(1);
    expect((await observe(agent, deployed.id))?.state).toBe("running");
    expect(await reconcilerEvents(deployed.id)).toEqual(["failed → deploying PortInUse", "deploying → running ContainerRunning"]);
    const quiet = await runPass();
    expect(quiet.drift_found, "drift found by the next pass").toBe(0);
  });

  test("taken ports stop after the attempt limit", async () => {
    // Enough for the deploy and every attempt of the reconciler, each moving MAX_PORT_MOVES times.
    const agent = await toolboxWithTakenPorts((MAX_PORT_MOVES + 1) * (MAX_ATTEMPTS + 1) + 2);
    const deployed = await deployInstance(reconciler, agent, ownerId, { name: "port-exhausted", image });
    expect(deployed.status_reason_code).toBe("PortInUse");

    const exhausted = await waitFor("the reconciler spends its attempts", async () => {
      await runPass();
      const row = (await reconciler.registry.getInstance(deployed.id))!;
      return row.restart_attempts >= MAX_ATTEMPTS && row.lease_nonce === null ? row : undefined;
    }, 30_000);
    const events = await reconcilerEvents(deployed.id);

    expect(exhausted.status).toBe("failed");
    expect(exhausted.status_reason_code).toBe("PortInUse");
    expect(events).toEqual(Array.from({ length: MAX_ATTEMPTS }, () => ["failed → deploying PortInUse", "deploying → failed PortInUse"]).flat());

    // Past the limit the instance stays failed, and passes neither retry nor write events.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await runPass();
    await runPass();
    const after = (await reconciler.registry.getInstance(deployed.id))!;
    expect(after.host_port).toBe(exhausted.host_port);
    expect(after.status).toBe("failed");
    expect(await reconcilerEvents(deployed.id)).toHaveLength(events.length);
  });
});

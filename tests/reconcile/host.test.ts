import { afterAll, beforeAll, expect, test } from "vitest";
import { ReconcileResponse, type ReconcileRunResponse } from "../../packages/shared/src/index.ts";
import { ensureImage } from "../../stack/images.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { describeWithEngine } from "../support/engine.ts";
import { createReconciler, createToolboxAgent, deployInstance, eventsSince, lastEventId, type Reconciler, type ToolboxAgent } from "./support.ts";

describeWithEngine("reconciler with an unreachable host", (engine) => {
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

  async function runPass(): Promise<ReconcileRunResponse> {
    const response = ReconcileResponse.parse(await reconciler.pass.run());
    if (response.status === "skipped") throw new Error(`pass skipped, lease held by ${response.holder}`);
    return response;
  }

  async function containerStates(ids: string[]): Promise<{ id: string; running: boolean; startedAt: string }[]> {
    return Promise.all(ids.map(async (id) => {
      const info = await engine.docker.getContainer(id).inspect();
      return { id, running: info.State.Running, startedAt: info.State.StartedAt };
    }));
  }

  test("agent down then back", async () => {
    const { sql } = getDb();
    const running = await deployInstance(reconciler, agent, ownerId, { name: "web", image });
    const stopped = await deployInstance(reconciler, agent, ownerId, { name: "idle", image, desiredState: "stopped" });
    const containersBefore = await containerStates([running.container_id!, stopped.container_id!]);
    const mark = await lastEventId(sql);
    await agent.stop();

    // Three failed contacts cross the threshold: unreachable, instances unknown, nothing repaired.
    const passes: ReconcileRunResponse[] = [];
    for (let attempt = 1; attempt <= 3; attempt += 1) passes.push(await runPass());
    const toolbox = await reconciler.registry.getToolbox(agent.toolbox.id);
    const [web, idle] = [await reconciler.registry.getInstance(running.id), await reconciler.registry.getInstance(stopped.id)];

    expect(passes.map((pass) => pass.toolboxes_unreachable)).toEqual([1, 1, 1]);
    expect(passes.map((pass) => pass.repairs_made)).toEqual([0, 0, 0]);
    expect(passes.map((pass) => pass.instances_marked_unknown)).toEqual([0, 0, 2]);
    expect(toolbox!.status).toBe("unreachable");
    expect(toolbox!.consecutive_failures).toBe(3);
    expect(web!.status).toBe("unknown");
    expect(web!.status_reason_code).toBe("HostUnreachable");
    expect(idle!.status).toBe("unknown");
    expect(await containerStates([running.container_id!, stopped.container_id!])).toEqual(containersBefore);

    // The agent returns: the old containers are adopted as they are, without a recreate.
    await agent.start();
    const recovered = await runPass();
    const [webAfter, idleAfter] = [await reconciler.registry.getInstance(running.id), await reconciler.registry.getInstance(stopped.id)];
    const events = await eventsSince(sql, running.id, mark);

    expect(recovered.repairs_made).toBe(2);
    expect((await reconciler.registry.getToolbox(agent.toolbox.id))!.status).toBe("active");
    expect(webAfter!.status).toBe("running");
    expect(webAfter!.container_id).toBe(running.container_id);
    expect(idleAfter!.status).toBe("stopped");
    expect(idleAfter!.container_id).toBe(stopped.container_id);
    expect(events.map((event) => `${event.to_status} ${event.reason_code}`)).toEqual(["unknown HostUnreachable", "running HostRecovered"]);
    expect(await containerStates([running.container_id!, stopped.container_id!])).toEqual(containersBefore);

    const quiet = await runPass();
    expect(quiet.drift_found).toBe(0);
    expect(quiet.repairs_made).toBe(0);
  });
});

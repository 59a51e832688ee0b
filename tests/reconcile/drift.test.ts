import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import {
  LABEL_GENERATION,
  LABEL_INSTANCE_ID,
  LABEL_MANAGED,
  LABEL_TOOLBOX_ID,
  ReconcileResponse,
  containerNameFor,
  type ReconcileRunResponse,
} from "../../packages/shared/src/index.ts";
import { ensureImage } from "../../stack/images.ts";
import { deriveAgentToken } from "../../supabase/functions/_shared/agent-token.ts";
import { createDtmaClient } from "../../supabase/functions/_shared/dtma-client.ts";
import { loadEnsureRequest } from "../../supabase/functions/_shared/spec.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { createTestRunLabel, describeWithEngine, removeLabeledContainers, waitForContainerStatus } from "../support/engine.ts";
import {
  AGENT_TOKEN_SECRET,
  createReconciler,
  createToolboxAgent,
  deployInstance,
  eventsSince,
  lastEventId,
  observe,
  type Reconciler,
  type ToolboxAgent,
} from "./support.ts";

describeWithEngine("reconciler drift repair", (engine) => {
  const getDb = useTestDatabase();
  const testRun = createTestRunLabel();
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
    await removeLabeledContainers(engine.docker, testRun.selector);
  });

  async function runPass(): Promise<ReconcileRunResponse> {
    const response = ReconcileResponse.parse(await reconciler.pass.run());
    if (response.status === "skipped") throw new Error(`pass skipped, lease held by ${response.holder}`);
    return response;
  }

  /** Runs a second pass and checks that it finds and repairs nothing. */
  async function expectQuietPass(): Promise<void> {
    const quiet = await runPass();
    expect(quiet.drift_found, "drift found by the second pass").toBe(0);
    expect(quiet.repairs_made, "repairs made by the second pass").toBe(0);
    expect(quiet.failures, "failures of the second pass").toBe(0);
  }

  async function readRow(id: string) {
    const row = await reconciler.registry.getInstance(id);
    if (row === null) throw new Error(`instance ${id} not found`);
    return row;
  }

  /** Returns the reconciler's events as `from → to reason`, oldest first. */
  async function transitionsSince(id: string, afterId: number): Promise<string[]> {
    const events = await eventsSince(getDb().sql, id, afterId);
    return events.filter((event) => event.actor === "reconciler").map((event) => `${event.from_status} → ${event.to_status} ${event.reason_code}`);
  }

  test("missing container is recreated", async () => {
    const deployed = await deployInstance(reconciler, agent, ownerId, { name: "missing", image });
    await engine.docker.getContainer(deployed.container_id!).remove({ force: true });
    const mark = await lastEventId(getDb().sql);

    const pass = await runPass();
    const row = await readRow(deployed.id);

    expect(pass.drift_found).toBeGreaterThanOrEqual(1);
    expect(row.status).toBe("running");
    expect(row.container_id).not.toBe(deployed.container_id);
    expect((await observe(agent, deployed.id))?.state).toBe("running");
    expect(await transitionsSince(deployed.id, mark)).toEqual(["running → deploying ContainerMissing", "deploying → running ContainerRunning"]);
    await expectQuietPass();
  });

  test("exited container is started", async () => {
    const deployed = await deployInstance(reconciler, agent, ownerId, { name: "exited", image });
    await engine.docker.getContainer(deployed.container_id!).stop({ t: 2 });
    const mark = await lastEventId(getDb().sql);

    await runPass();
    const row = await readRow(deployed.id);

    expect(row.status).toBe("running");
    expect(row.container_id).toBe(deployed.container_id);
    expect((await observe(agent, deployed.id))?.state).toBe("running");
    expect(await transitionsSince(deployed.id, mark)).toEqual(["running → starting ContainerExited", "starting → running ContainerRunning"]);
    await expectQuietPass();
  });

  test("running container of stopped instance", async () => {
    const deployed = await deployInstance(reconciler, agent, ownerId, { name: "stopped", image, desiredState: "stopped" });
    expect(deployed.status).toBe("stopped");
    await engine.docker.getContainer(deployed.container_id!).start();
    const mark = await lastEventId(getDb().sql);

    await runPass();
    const row = await readRow(deployed.id);

    expect(row.status).toBe("stopped");
    expect((await observe(agent, deployed.id))?.state).not.toBe("running");
    expect(await transitionsSince(deployed.id, mark)).toEqual(["stopped → stopping UnexpectedlyRunning", "stopping → stopped ContainerStopped"]);
    await expectQuietPass();
  });

  test("older generation is recreated", async () => {
    const { sql } = getDb();
    const deployed = await deployInstance(reconciler, agent, ownerId, { name: "outdated", image });
    await sql`update public.tool_instances set generation = generation + 1, spec_generation = generation + 1 where id = ${deployed.id}`;
    const mark = await lastEventId(sql);

    await runPass();
    const row = await readRow(deployed.id);
    const observation = await observe(agent, deployed.id);

    expect(row.spec_generation).toBe(deployed.spec_generation + 1);
    expect(observation?.generation).toBe(row.spec_generation);
    expect(observation?.container_id).not.toBe(deployed.container_id);
    expect(row.status).toBe("running");
    expect(await transitionsSince(deployed.id, mark)).toEqual(["running → deploying SpecChanged", "deploying → running ContainerRunning"]);
    await expectQuietPass();
  });

  test("orphan container is removed", async () => {
    const orphanId = randomUUID();
    const container = await engine.docker.createContainer({
      name: containerNameFor(orphanId),
      Image: image,
      Labels: {
        ...testRun.labels,
        [LABEL_MANAGED]: "true",
        [LABEL_INSTANCE_ID]: orphanId,
        [LABEL_TOOLBOX_ID]: agent.toolbox.id,
        [LABEL_GENERATION]: "1",
      },
    });
    await container.start();
    expect((await observe(agent, orphanId))?.container_id).toBe(container.id);

    const pass = await runPass();

    expect(pass.orphans_removed).toBe(1);
    expect(await observe(agent, orphanId)).toBeNull();
    expect(reconciler.logLines.some((line) => line.includes("removed orphan container") && line.includes(orphanId))).toBe(true);
    await expectQuietPass();
  });

  test("orphan within grace is kept", async () => {
    const { sql } = getDb();
    const patient = createReconciler(sql, { BERTH_RECONCILE_ORPHAN_GRACE_SECONDS: "300" });
    const orphanId = randomUUID();
    const container = await engine.docker.createContainer({
      name: containerNameFor(orphanId),
      Image: image,
      Labels: { ...testRun.labels, [LABEL_MANAGED]: "true", [LABEL_INSTANCE_ID]: orphanId, [LABEL_TOOLBOX_ID]: agent.toolbox.id },
    });

    const first = ReconcileResponse.parse(await patient.pass.run());
    const sightings = await sql<{ container_id: string }[]>`
      select container_id from berth_private.orphan_containers where instance_id = ${orphanId}`;

    expect(first.status === "skipped" ? null : first.orphans_removed).toBe(0);
    expect(first.status === "skipped" ? null : first.drift_found).toBe(1);
    expect(sightings.map((row) => row.container_id)).toEqual([container.id]);
    expect((await observe(agent, orphanId))?.container_id).toBe(container.id);

    // Once the container is gone, the next pass deletes the sighting.
    await container.remove({ force: true });
    await patient.pass.run();
    const [left] = await sql<{ count: number }[]>`select count(*)::int as count from berth_private.orphan_containers`;
    expect(left!.count).toBe(0);
  });

  test("stuck starting is driven again", async () => {
    const { sql } = getDb();
    const deployed = await deployInstance(reconciler, agent, ownerId, { name: "stuck", image });
    await engine.docker.getContainer(deployed.container_id!).stop({ t: 2 });

    // An operation that crashed after showing `starting`: its one-second lease expires unreleased.
    const leased = await reconciler.registry.claimInstanceLease(deployed.id, "user:crashed", 1);
    await reconciler.registry.setInstanceStatus(leased.lease_nonce!, {
      instanceId: deployed.id, status: "starting", reasonCode: "StartRequested", actor: "user",
    });
    await sql`update public.tool_instances set status_changed_at = now() - interval '1 minute' where id = ${deployed.id}`;
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const mark = await lastEventId(sql);

    await runPass();
    const row = await readRow(deployed.id);

    expect(row.status).toBe("running");
    expect((await observe(agent, deployed.id))?.state).toBe("running");
    // The row already shows `starting`, so the only event of the repair carries the cause.
    expect(await transitionsSince(deployed.id, mark)).toEqual(["starting → running StuckTransition"]);
    await expectQuietPass();
  });

  test("replaced container is adopted", async () => {
    const deployed = await deployInstance(reconciler, agent, ownerId, { name: "adopted", image });
    await engine.docker.getContainer(deployed.container_id!).remove({ force: true });
    const token = await deriveAgentToken(AGENT_TOKEN_SECRET, agent.toolbox.id, agent.toolbox.token_version);
    const client = createDtmaClient({ baseUrl: agent.url, token, timeoutMs: 30_000, allowPrivateAddresses: true });
    const replacement = await client.ensure(deployed.id, await loadEnsureRequest(reconciler.registry, deployed));
    await waitForContainerStatus(engine.docker.getContainer(replacement.container_id), "running");
    const mark = await lastEventId(getDb().sql);

    await runPass();
    const row = await readRow(deployed.id);
    const events = await eventsSince(getDb().sql, deployed.id, mark);

    expect(row.container_id).toBe(replacement.container_id);
    expect((await observe(agent, deployed.id))?.container_id).toBe(replacement.container_id);
    expect(row.status).toBe("running");
    expect(events.map((event) => event.reason_code)).toEqual(["Adopted"]);
    expect(events[0]!.details.previous_container_id).toBe(deployed.container_id);
    await expectQuietPass();
  });
});

import { afterAll, beforeAll, expect, test } from "vitest";
import { ReconcileResponse } from "../../packages/shared/src/index.ts";
import { ensureImage } from "../../stack/images.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { describeWithEngine } from "../support/engine.ts";
import { createReconciler, createToolboxAgent, deployInstance, eventsSince, waitFor, type Reconciler, type ToolboxAgent } from "./support.ts";

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

    // Failed with CrashLoop is final until the owner records new intent. The container stays stopped.
    const container = await engine.docker.getContainer(failed.container_id!).inspect();
    expect(container.State.Running).toBe(false);
    const after = ReconcileResponse.parse(await reconciler.pass.run());
    expect(after.status).toBe("succeeded");
    expect(after.status === "skipped" ? null : after.repairs_made).toBe(0);
    expect((await engine.docker.getContainer(failed.container_id!).inspect()).State.StartedAt).toBe(container.State.StartedAt);
  });
});

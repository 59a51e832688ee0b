import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createClient, type SupabaseClient, type WebSocketLikeConstructor } from "@supabase/supabase-js";
import WebSocket from "ws";
import { afterAll, beforeAll, expect, test } from "vitest";
import { containerNameFor, InstanceResponse, LABEL_TOOLBOX_ID, ReconcileRunResponse } from "@berth/shared";
import { startDevStack, type DevStack } from "../../stack/dev-stack.ts";
import { ensureImage, MCP_EVERYTHING_PATH, MCP_EVERYTHING_PORT } from "../../stack/images.ts";
import { freePort } from "../../stack/net.ts";
import { listMcpTools, readInstanceEvents, waitUntil } from "../../stack/walkthrough.ts";
import { useTestDatabase } from "../support/db.ts";
import { describeWithEngine, removeLabeledContainers } from "../support/engine.ts";

// The same story as `npm run demo`, through public interfaces only: supabase-js
// functions.invoke with the dev user's JWT, the MCP SDK client on the endpoint Berth reports,
// the container engine for sabotage, and SQL only to read events.

const getDb = useTestDatabase();

function supabaseFor(stack: DevStack, token: string): SupabaseClient {
  return createClient(stack.apiUrl, stack.anonKey, {
    accessToken: async () => token,
    // Node 20 has no global WebSocket, and supabase-js needs a Realtime transport to start.
    realtime: { transport: WebSocket as unknown as WebSocketLikeConstructor },
  });
}

async function invoke(client: SupabaseClient, name: string, method: "GET" | "POST" | "DELETE", body?: unknown): Promise<unknown> {
  const { data, error } = await client.functions.invoke(name, { method, body: body as Record<string, unknown> | undefined });
  if (error) {
    const context = (error as { context?: Response }).context;
    const detail = context ? await context.text() : "";
    throw new Error(`${method} ${name} failed: ${error.message} ${detail}`);
  }
  return data;
}

describeWithEngine("end to end on a real MCP server", (engine) => {
  let stack: DevStack;
  let stateDir: string;
  let user: SupabaseClient;
  let service: SupabaseClient;
  let image: string;

  beforeAll(async () => {
    image = await ensureImage(engine.dockerHost, "mcp-everything");
    stateDir = await mkdtemp(path.join(os.tmpdir(), "berth-e2e-"));
    stack = await startDevStack({
      apiPort: await freePort(),
      agentPort: await freePort(),
      stateDir,
      databaseUrl: getDb().url,
      dockerHost: engine.dockerHost,
      reconcileIntervalMs: null,
      log: () => {},
    });
    user = supabaseFor(stack, stack.devUserJwt);
    service = supabaseFor(stack, stack.serviceRoleKey);
  }, 240_000);

  afterAll(async () => {
    await stack?.stop();
    if (stack) await removeLabeledContainers(engine.docker, `${LABEL_TOOLBOX_ID}=${stack.toolboxId}`);
    await rm(stateDir, { recursive: true, force: true });
  });

  const getInstance = async (id: string) => InstanceResponse.parse(await invoke(user, `instances/${id}`, "GET"));
  const reconcile = async () => ReconcileRunResponse.parse(await invoke(service, "reconcile", "POST", {}));

  test("deploy, survive, repair and remove", async () => {
    const deployed = InstanceResponse.parse(
      await invoke(user, "instances", "POST", {
        toolbox_id: stack.toolboxId,
        name: "everything",
        image,
        port: MCP_EVERYTHING_PORT,
        mcp_path: MCP_EVERYTHING_PATH,
      }),
    );
    expect(deployed.status).toBe("running");
    const firstContainer = deployed.container_id;
    expect(firstContainer).not.toBeNull();

    const endpoint = deployed.endpoint;
    expect(endpoint).not.toBeNull();
    const tools = await waitUntil("tools/list on the reported endpoint", () => listMcpTools(endpoint!), { timeoutMs: 30_000, intervalMs: 500 });
    expect(tools).toContain("echo");

    // The agent keeps no state, so after SIGKILL a new process finds the container by its labels.
    const oldPid = stack.agent.pid();
    process.kill(oldPid ?? 0, "SIGKILL");
    const newPid = await stack.agent.waitUntilHealthy({ previousPid: oldPid });
    expect(newPid).not.toBe(oldPid);

    const stopped = InstanceResponse.parse(await invoke(user, `instances/${deployed.id}/stop`, "POST"));
    expect(stopped.status).toBe("stopped");
    const started = InstanceResponse.parse(await invoke(user, `instances/${deployed.id}/start`, "POST"));
    expect(started.status).toBe("running");
    expect(started.container_id).toBe(firstContainer);

    // Removed behind Berth's back: the reconciler recreates it.
    await engine.docker.getContainer(containerNameFor(deployed.id)).remove({ force: true });
    const firstPass = await reconcile();
    expect(firstPass.repairs_made).toBeGreaterThanOrEqual(1);
    const recreated = await getInstance(deployed.id);
    expect(recreated.status).toBe("running");
    expect(recreated.container_id).not.toBe(firstContainer);

    // Stopped behind Berth's back: the reconciler starts it again.
    await engine.docker.getContainer(containerNameFor(deployed.id)).stop({ t: 1 });
    await waitUntil("a pass that restarts the stopped container", async () => {
      await reconcile();
      const current = await getInstance(deployed.id);
      return current.status === "running" && current.docker_state === "running" ? current : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });

    const reasons = (await readInstanceEvents(getDb().sql, deployed.id)).map((event) => event.reason_code);
    expect(reasons).toContain("ContainerMissing");
    expect(reasons).toContain("ContainerExited");

    const removing = InstanceResponse.parse(await invoke(user, `instances/${deployed.id}`, "DELETE"));
    expect(["removing", "removed"]).toContain(removing.status);
    const removed = await waitUntil("status removed", async () => {
      const current = await getInstance(deployed.id).catch(() => undefined);
      return current?.status === "removed" ? current : undefined;
    }, { timeoutMs: 30_000 });
    expect(removed.status).toBe("removed");
    expect(removed.endpoint).toBeNull();

    const left = await engine.docker.listContainers({ all: true, filters: { name: [containerNameFor(deployed.id)] } });
    expect(left).toHaveLength(0);
  }, 180_000);
});

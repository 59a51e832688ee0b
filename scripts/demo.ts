// `npm run demo`: a narrated walkthrough on a real MCP server, against the stack that
// `npm start` runs. It uses the public API, the MCP SDK, the container engine (for sabotage)
// and SQL (only to read events).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import postgres from "postgres";
import { createClient, type WebSocketLikeConstructor } from "@supabase/supabase-js";
import WebSocket from "ws";
import { createBerthClient, type BerthClient } from "@berth/client";
import { containerNameFor, type InstanceResponse } from "@berth/shared";
import { createDockerClient } from "../stack/engine.ts";
import { ensureImage, MCP_EVERYTHING_PATH, MCP_EVERYTHING_PORT } from "../stack/images.ts";
import { REPO_ROOT } from "../stack/paths.ts";
import { listMcpTools, readEnvFile, readInstanceEvents, waitUntil } from "../stack/walkthrough.ts";

const ENV_FILE = path.join(REPO_ROOT, ".berth", "dev.env");
const AGENT_PID_FILE = path.join(REPO_ROOT, ".berth", "agent.pid");
const STEPS = 8;
let step = 0;

function narrate(title: string): void {
  step += 1;
  process.stdout.write(`\n[${step}/${STEPS}] ${title}\n`);
}

function say(line: string): void {
  process.stdout.write(`      ${line}\n`);
}

async function main(): Promise<void> {
  if (!existsSync(ENV_FILE)) {
    throw new Error(`${path.relative(process.cwd(), ENV_FILE)} is missing: run \`npm start\` in another terminal first, then run the demo again`);
  }
  const env = await readEnvFile(ENV_FILE);
  const berth = userClient(env);
  const docker = createDockerClient(required(env, "DOCKER_HOST"));
  const sql = postgres(required(env, "SUPABASE_DB_URL"), { max: 1, onnotice: () => {} });

  try {
    const image = await buildImage(env);
    const instance = await deploy(berth, env, image);
    await useMcpServer(instance);
    await restartAgent(berth, env, instance);
    await stopAndStart(berth, instance);
    await sabotage(berth, docker, instance);
    await printEvents(sql, instance);
    await remove(berth, instance);
    process.stdout.write("\nThe demo finished: every step passed.\n");
  } finally {
    await sql.end();
  }
}

function userClient(env: Record<string, string>): BerthClient {
  const token = required(env, "BERTH_DEV_USER_JWT");
  const supabase = createClient(required(env, "SUPABASE_URL"), required(env, "SUPABASE_ANON_KEY"), {
    accessToken: async () => token,
    // Node 20 has no global WebSocket, and supabase-js needs a Realtime transport to start.
    realtime: { transport: WebSocket as unknown as WebSocketLikeConstructor },
  });
  return createBerthClient(supabase);
}

function required(env: Record<string, string>, key: string): string {
  const value = env[key];
  if (!value) throw new Error(`${key} is missing from ${ENV_FILE}: restart \`npm start\` to rewrite it`);
  return value;
}

async function buildImage(env: Record<string, string>): Promise<string> {
  narrate("Build the MCP server image locally (no registry needed)");
  const image = await ensureImage(required(env, "DOCKER_HOST"), "mcp-everything", { log: (line) => say(line) });
  say(`image ${image}: @modelcontextprotocol/server-everything, streamable HTTP on port ${MCP_EVERYTHING_PORT}`);
  return image;
}

async function deploy(berth: BerthClient, env: Record<string, string>, image: string): Promise<InstanceResponse> {
  narrate("Deploy it to the local toolbox through the instances function");
  const name = `demo-${Date.now().toString(36)}`;
  const { instance, inProgress } = await berth.instances.deploy({
    toolbox_id: required(env, "BERTH_LOCAL_TOOLBOX_ID"),
    name,
    image,
    port: MCP_EVERYTHING_PORT,
    mcp_path: MCP_EVERYTHING_PATH,
  });
  say(`instance ${instance.name} (${instance.id}) is ${instance.status}${inProgress ? ", still in progress" : ""}`);

  const running = await waitForStatus(berth, instance.id, "running");
  say(`container ${short(running.container_id)} serves MCP at ${running.endpoint}`);
  return running;
}

async function useMcpServer(instance: InstanceResponse): Promise<void> {
  narrate("Connect with the MCP SDK client and list the server's tools");
  const endpoint = instance.endpoint;
  if (endpoint === null) throw new Error(`instance ${instance.id} has no MCP endpoint while ${instance.status}`);
  const tools = await waitUntil("the MCP server to answer tools/list", () => listMcpTools(endpoint), { timeoutMs: 30_000, intervalMs: 500 });
  say(`${tools.length} tools: ${tools.slice(0, 6).join(", ")}${tools.length > 6 ? ", ..." : ""}`);
}

async function restartAgent(berth: BerthClient, env: Record<string, string>, instance: InstanceResponse): Promise<void> {
  narrate("Kill the agent with SIGKILL; npm start brings it back, knowing nothing");
  const pid = Number(readFileSync(AGENT_PID_FILE, "utf8"));
  process.kill(pid, "SIGKILL");
  say(`killed agent process ${pid}`);

  const newPid = await waitUntil("a new agent process", async () => {
    const current = Number(readFileSync(AGENT_PID_FILE, "utf8"));
    return current !== pid ? current : undefined;
  }, { timeoutMs: 30_000 });
  await waitUntil("the new agent to answer /healthz", async () => {
    const response = await fetch(`${required(env, "DTMA_URL")}/healthz`, { signal: AbortSignal.timeout(1_000) });
    return response.ok ? true : undefined;
  }, { timeoutMs: 30_000 });
  say(`agent process ${newPid} answers; it finds its containers by label, so nothing is lost`);

  const after = await berth.instances.get(instance.id);
  say(`instance ${after.name} is still ${after.status} with container ${short(after.container_id)}`);
}

async function stopAndStart(berth: BerthClient, instance: InstanceResponse): Promise<void> {
  narrate("Stop and start the instance through the new agent (no 404)");
  await berth.instances.stop(instance.id);
  say(`stop: ${(await waitForStatus(berth, instance.id, "stopped")).status}`);

  await berth.instances.start(instance.id);
  const started = await waitForStatus(berth, instance.id, "running");
  say(`start: ${started.status}, same container ${short(started.container_id)}`);
}

async function sabotage(berth: BerthClient, docker: ReturnType<typeof createDockerClient>, instance: InstanceResponse): Promise<void> {
  narrate("Remove the container behind Berth's back and watch the reconciler bring it back");
  const before = await berth.instances.get(instance.id);
  let dots = 0;
  await docker.getContainer(containerNameFor(instance.id)).remove({ force: true });
  say(`removed container ${short(before.container_id)} with the engine; waiting for the next reconciler pass`);

  const repaired = await waitUntil("the reconciler to recreate the container", async () => {
    const current = await berth.instances.get(instance.id);
    return current.status === "running" && current.container_id !== before.container_id && current.container_id ? current : undefined;
  }, { timeoutMs: 90_000, intervalMs: 1_000, onPoll: () => process.stdout.write(dots++ === 0 ? "      ." : ".") });
  if (dots > 0) process.stdout.write("\n");
  say(`recreated as container ${short(repaired.container_id)}, now ${repaired.status} (${repaired.status_reason_code ?? "no reason"}); the events below name the cause`);
}

async function printEvents(sql: postgres.Sql, instance: InstanceResponse): Promise<void> {
  narrate("Read the instance's events: the whole story, written by the database");
  const events = await readInstanceEvents(sql, instance.id);
  const rows = events.map((event) => [
    event.created_at.toISOString().slice(11, 19),
    `${event.from_status ?? "-"} -> ${event.to_status}`,
    event.actor,
    event.reason_code ?? "",
  ]);
  printTable(["time", "transition", "actor", "reason"], rows);
}

async function remove(berth: BerthClient, instance: InstanceResponse): Promise<void> {
  narrate("Delete the instance: the container goes, the row ends as removed");
  await berth.instances.remove(instance.id);
  const removed = await waitForStatus(berth, instance.id, "removed");
  say(`instance ${removed.name} is ${removed.status}`);
}

async function waitForStatus(berth: BerthClient, id: string, status: InstanceResponse["status"]): Promise<InstanceResponse> {
  return waitUntil(`instance ${id} to be ${status}`, async () => {
    const instance = await berth.instances.get(id);
    if (instance.status === "failed") throw new Error(`instance failed: ${instance.status_reason_code} ${instance.status_reason}`);
    return instance.status === status ? instance : undefined;
  }, { timeoutMs: 60_000, intervalMs: 500 });
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)));
  const format = (cells: string[]) => `      ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ")}`.trimEnd();
  process.stdout.write(`${format(header)}\n${rows.map(format).join("\n")}\n`);
}

function short(containerId: string | null): string {
  return containerId ? containerId.slice(0, 12) : "(none)";
}

main().catch((error: unknown) => {
  process.stderr.write(`\ndemo failed at step ${step}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

// Simulated DTMA agents for the reconciler benchmark, run as a child process so their CPU time
// is not counted as the reconciler's. One process listens on one loopback port per toolbox and
// keeps each toolbox's containers in memory. It serves the agent routes a pass uses:
// inventory, ensure (PUT), start, stop, remove and logs. Tokens are not checked.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import type { InstanceObservation } from "../../packages/shared/src/index.ts";
import type { AgentsReady, Drift, FromParent, Layout } from "./protocol.ts";

const toolboxes = new Map<string, Map<string, InstanceObservation>>();
const servers: http.Server[] = [];

process.on("message", (message: FromParent) => {
  void handleMessage(message).catch((error: unknown) => {
    console.error("fake agents failed", error);
    process.exit(1);
  });
});

async function handleMessage(message: FromParent): Promise<void> {
  if (message.kind === "layout") return listen(message.layout);
  if (message.kind === "drift") return applyDrift(message.drift);
  for (const server of servers) server.close();
  process.exit(0);
}

async function listen(layout: Layout): Promise<void> {
  const ports: Record<string, number> = {};
  for (const toolbox of layout) {
    const containers = new Map(toolbox.instanceIds.map((id) => [id, runningContainer(id, 1)]));
    toolboxes.set(toolbox.toolboxId, containers);
    const server = http.createServer((request, response) => route(containers, request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push(server);
    ports[toolbox.toolboxId] = (server.address() as AddressInfo).port;
  }
  process.send!({ kind: "ready", ports } satisfies AgentsReady);
}

function runningContainer(instanceId: string, generation: number): InstanceObservation {
  return {
    instance_id: instanceId,
    container_id: randomUUID().replaceAll("-", ""),
    state: "running",
    exit_code: null,
    oom_killed: false,
    restart_count: 0,
    generation,
    host_port: null,
    started_at: "2026-12-04T10:00:00.000Z",
    finished_at: null,
    health: null,
  };
}

/** Changes containers behind the reconciler's back, as a crash, a manual `docker rm` or a recreate would. */
function applyDrift(drift: Drift[]): void {
  for (const { toolboxId, instanceId, kind } of drift) {
    const containers = toolboxes.get(toolboxId)!;
    const current = containers.get(instanceId)!;
    if (kind === "missing") containers.delete(instanceId);
    if (kind === "exited") containers.set(instanceId, { ...current, state: "exited", exit_code: 1, finished_at: new Date().toISOString() });
    if (kind === "replaced") containers.set(instanceId, runningContainer(instanceId, current.generation ?? 1));
  }
  process.send!({ kind: "drifted", count: drift.length });
}

function route(containers: Map<string, InstanceObservation>, request: http.IncomingMessage, response: http.ServerResponse): void {
  const url = new URL(request.url ?? "/", "http://agent.local");
  if (request.method === "GET" && url.pathname === "/v1/inventory") {
    return send(response, 200, { agent_version: "bench", engine_version: "bench", instances: [...containers.values()] });
  }

  const match = /^\/v1\/instances\/([0-9a-f-]{36})(?:\/(start|stop|restart|logs))?$/.exec(url.pathname);
  if (match === null) return send(response, 404, { error: { code: "not_found", message: "no such route" } });
  const [, id, action] = match as unknown as [string, string, string | undefined];

  if (request.method === "PUT") return readBody(request, (body) => ensure(containers, id, body, response));
  if (request.method === "DELETE") {
    containers.delete(id);
    return send(response, 204, null);
  }
  act(containers, id, action, response);
}

function ensure(containers: Map<string, InstanceObservation>, id: string, body: { generation: number; desired_state: string }, response: http.ServerResponse): void {
  const current = containers.get(id);
  const container = current !== undefined && current.generation === body.generation ? current : runningContainer(id, body.generation);
  const state = body.desired_state === "running" ? "running" : "exited";
  const ensured = { ...container, state, exit_code: state === "running" ? null : 0 };
  containers.set(id, ensured);
  send(response, current === undefined ? 201 : 200, ensured);
}

function act(containers: Map<string, InstanceObservation>, id: string, action: string | undefined, response: http.ServerResponse): void {
  const current = containers.get(id);
  if (current === undefined) return send(response, 404, { error: { code: "instance_not_found", message: `no container for ${id}` } });
  if (action === "logs") return send(response, 200, { instance_id: id, container_id: current.container_id, lines: [] });

  const running = action === "start" || action === "restart";
  const changed = { ...current, state: running ? "running" : "exited", exit_code: running ? null : 0 };
  containers.set(id, changed);
  send(response, 200, changed);
}

function readBody(request: http.IncomingMessage, handle: (body: { generation: number; desired_state: string }) => void): void {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => handle(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
}

function send(response: http.ServerResponse, status: number, body: unknown): void {
  if (body === null) {
    response.writeHead(status).end();
    return;
  }
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

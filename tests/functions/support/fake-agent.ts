import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { InstanceObservation } from "@berth/shared";

/**
 * Behaviour of the fake agent. `ok` follows the agent contract with containers kept in memory.
 * `hang` accepts requests and never responds. `error500` fails every call with 500.
 * `image_not_found` rejects every PUT.
 */
export type FakeAgentMode = "ok" | "hang" | "error500" | "image_not_found";

export interface RecordedRequest {
  method: string;
  path: string;
  body: any;
}

interface FakeContainer {
  id: string;
  state: string;
  generation: number;
  hostPort: number;
}

/**
 * A stand-in for the DTMA at the HTTP level, for cases the real agent cannot produce on demand:
 * a call that hangs, a 500, a port taken on the host, and slow calls that make requests overlap.
 */
export interface FakeAgent {
  url: string;
  mode: FakeAgentMode;
  /** Delay before every response, in milliseconds. */
  delayMs: number;
  /** PUT, start and restart calls still to reject with `port_in_use`, as if every requested host port were taken. */
  portInUseCount: number;
  requests: RecordedRequest[];
  containers: Map<string, FakeContainer>;
  close(): Promise<void>;
}

export async function startFakeAgent(): Promise<FakeAgent> {
  const agent = { mode: "ok", delayMs: 0, portInUseCount: 0, requests: [], containers: new Map() } as unknown as FakeAgent;
  let containerCount = 0;
  const nextContainerId = () => `fake${String((containerCount += 1)).padStart(60, "0")}`;

  const server = http.createServer((request, response) => {
    void handle(agent, request, response, nextContainerId);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  agent.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  agent.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return agent;
}

async function handle(agent: FakeAgent, request: http.IncomingMessage, response: http.ServerResponse, nextContainerId: () => string): Promise<void> {
  const text = await readBody(request);
  const path = new URL(request.url ?? "/", "http://agent.local").pathname;
  agent.requests.push({ method: request.method ?? "", path, body: text === "" ? null : JSON.parse(text) });

  if (agent.mode === "hang") return;
  if (agent.delayMs > 0) await sleep(agent.delayMs);
  if (agent.mode === "error500") return send(response, 500, errorOf("internal_error", "the engine failed"));

  const reply = route(agent, request.method ?? "", path, text === "" ? null : JSON.parse(text), nextContainerId);
  send(response, reply.status, reply.body);
}

interface Reply {
  status: number;
  body: unknown;
}

function route(agent: FakeAgent, method: string, path: string, body: any, nextContainerId: () => string): Reply {
  if (method === "GET" && path === "/v1/inventory") {
    const instances = [...agent.containers.entries()].map(([id, container]) => observation(id, container));
    return { status: 200, body: { agent_version: "fake-1", engine_version: "fake-engine", instances } };
  }

  const match = /^\/v1\/instances\/([^/]+)(?:\/(start|stop|restart|logs))?$/.exec(path);
  if (match === null) return { status: 404, body: errorOf("not_found", `no route for ${method} ${path}`) };
  const [, id = "", action] = match;

  if (agent.portInUseCount > 0 && (method === "PUT" || action === "start" || action === "restart")) {
    agent.portInUseCount -= 1;
    return { status: 409, body: errorOf("port_in_use", "the host port is already in use") };
  }
  if (method === "PUT") return ensure(agent, id, body, nextContainerId);
  if (method === "DELETE") {
    agent.containers.delete(id);
    return { status: 204, body: null };
  }
  return containerAction(agent, id, action ?? "");
}

function ensure(agent: FakeAgent, id: string, spec: any, nextContainerId: () => string): Reply {
  if (agent.mode === "image_not_found") return { status: 404, body: errorOf("image_not_found", `image ${spec.image} is not present on this host`) };

  const existing = agent.containers.get(id);
  const created = existing === undefined || existing.generation !== spec.generation;
  const container: FakeContainer = created ? { id: nextContainerId(), state: "created", generation: spec.generation, hostPort: spec.host_port } : existing;
  if (spec.desired_state === "running") container.state = "running";
  else if (container.state === "running") container.state = "exited";
  agent.containers.set(id, container);
  return { status: created ? 201 : 200, body: observation(id, container) };
}

function containerAction(agent: FakeAgent, id: string, action: string): Reply {
  const container = agent.containers.get(id);
  if (container === undefined) return { status: 404, body: errorOf("instance_not_found", `no container exists for instance ${id}`) };

  if (action === "logs") {
    return { status: 200, body: { instance_id: id, container_id: container.id, lines: [{ stream: "stdout", time: null, text: "fake log line" }] } };
  }
  container.state = action === "stop" ? "exited" : "running";
  return { status: 200, body: observation(id, container) };
}

function observation(id: string, container: FakeContainer): InstanceObservation {
  const running = container.state === "running";
  return {
    instance_id: id,
    container_id: container.id,
    state: container.state,
    exit_code: running || container.state === "created" ? null : 0,
    oom_killed: false,
    restart_count: 0,
    generation: container.generation,
    host_port: container.hostPort,
    started_at: null,
    finished_at: null,
    health: null,
  };
}

function errorOf(code: string, message: string) {
  return { error: { code, message } };
}

function send(response: http.ServerResponse, status: number, body: unknown): void {
  if (body === null) {
    response.writeHead(status).end();
    return;
  }
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

async function readBody(request: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

import { fork, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type postgres from "postgres";
import type { AgentsReady, Drift, FromAgents, FromParent, Layout } from "./protocol.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));

export interface Fleet {
  ownerId: string;
  layout: Layout;
  agents: ChildProcess;
  /** Applies drift in the simulated agents and resolves once they report it done. */
  drift(changes: Drift[]): Promise<void>;
  stop(): void;
}

/** Starts the simulated agents and registers their toolboxes and instances in the database. */
export async function createFleet(sql: postgres.Sql, toolboxCount: number, instancesPerToolbox: number): Promise<Fleet> {
  const layout: Layout = Array.from({ length: toolboxCount }, () => ({
    toolboxId: randomUUID(),
    instanceIds: Array.from({ length: instancesPerToolbox }, () => randomUUID()),
  }));
  const agents = fork(path.join(HERE, "fake-agents.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ready = await request<AgentsReady>(agents, { kind: "layout", layout }, "ready");

  const ownerId = randomUUID();
  await sql`insert into auth.users (id, email) values (${ownerId}, ${`${ownerId}@bench.test`})`;
  await insertToolboxes(sql, ownerId, layout, ready.ports);
  await insertInstances(sql, ownerId, layout);

  return {
    ownerId,
    layout,
    agents,
    drift: async (changes) => {
      await request(agents, { kind: "drift", drift: changes }, "drifted");
    },
    stop: () => {
      if (agents.connected) agents.send({ kind: "exit" } satisfies FromParent);
    },
  };
}

async function insertToolboxes(sql: postgres.Sql, ownerId: string, layout: Layout, ports: Record<string, number>): Promise<void> {
  const ids = layout.map((toolbox) => toolbox.toolboxId);
  const urls = ids.map((id) => `http://127.0.0.1:${ports[id]}`);
  await sql`
    insert into public.toolboxes (id, owner_id, name, agent_url, status)
    select t.id, ${ownerId}, 'bench-' || t.ordinality, t.url, 'active'
    from unnest(${sql.array(ids)}::uuid[], ${sql.array(urls)}::text[]) with ordinality as t(id, url, ordinality)`;
}

/** Inserts running instances without an observation; the first pass records what the agents report. */
async function insertInstances(sql: postgres.Sql, ownerId: string, layout: Layout): Promise<void> {
  const instanceIds = layout.flatMap((toolbox) => toolbox.instanceIds);
  const toolboxIds = layout.flatMap((toolbox) => toolbox.instanceIds.map(() => toolbox.toolboxId));
  const slots = layout.flatMap((toolbox) => toolbox.instanceIds.map((_, slot) => slot));
  await sql`
    insert into public.tool_instances
      (id, owner_id, toolbox_id, name, image, container_port, host_port, status, status_reason_code, desired_state)
    select t.id, ${ownerId}, t.toolbox_id, 'tool-' || t.slot, 'localhost/berth/http-echo:bench', 8080, 30001 + t.slot,
           'running', 'ContainerRunning', 'running'
    from unnest(${sql.array(instanceIds)}::uuid[], ${sql.array(toolboxIds)}::uuid[], ${sql.array(slots)}::int[]) as t(id, toolbox_id, slot)`;
}

function request<T extends FromAgents>(agents: ChildProcess, message: FromParent, reply: T["kind"]): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (answer: FromAgents) => {
      if (answer.kind !== reply) return;
      agents.off("message", onMessage);
      agents.off("exit", onExit);
      resolve(answer as T);
    };
    const onExit = (code: number | null) => reject(new Error(`the simulated agents exited with code ${code} before replying ${reply}`));
    agents.on("message", onMessage);
    agents.once("exit", onExit);
    agents.send(message);
  });
}

/** Picks `count` instances spread over the fleet and cycles through the drift kinds. */
export function pickDrift(layout: Layout, count: number): Drift[] {
  const kinds: Drift["kind"][] = ["exited", "missing", "replaced"];
  const all = layout.flatMap((toolbox) => toolbox.instanceIds.map((instanceId) => ({ toolboxId: toolbox.toolboxId, instanceId })));
  const step = Math.max(1, Math.floor(all.length / count));
  return Array.from({ length: count }, (_, index) => ({ ...all[(index * step) % all.length]!, kind: kinds[index % kinds.length]! }));
}

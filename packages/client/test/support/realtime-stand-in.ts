import http from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

/**
 * A stand-in for Supabase Realtime, which does not run in this project's test stack. It speaks
 * the Phoenix channel protocol (serializer 2.0.0: JSON arrays of join_ref, ref, topic, event,
 * payload) at `/realtime/v1/websocket`: it accepts joins, confirms each `postgres_changes`
 * binding with an id as Realtime does, replies to heartbeats and leaves, and lets a test push a
 * change to the subscribers. It does not read the database and applies no row level security;
 * the real service does both.
 */
export interface RealtimeStandIn {
  url: string;
  /** Every `phx_join` received, with its topic and payload. */
  joins: Array<{ topic: string; payload: JoinPayload }>;
  /** Topics that sent `phx_leave`. */
  leaves: string[];
  /** Sends a `postgres_changes` message to every joined topic whose binding matches the table. */
  pushChange(change: ChangeData): void;
  /** Resolves once `count` joins have been confirmed. */
  waitForJoins(count: number): Promise<void>;
  stop(): Promise<void>;
}

export interface JoinPayload {
  access_token?: string;
  config: { postgres_changes: Array<{ event: string; schema: string; table: string; filter?: string }> };
}

/** The `data` of a Realtime `postgres_changes` message. */
export interface ChangeData {
  schema: string;
  table: string;
  commit_timestamp: string;
  type: "INSERT" | "UPDATE" | "DELETE";
  columns: Array<{ name: string; type: string }>;
  record: Record<string, unknown>;
  old_record: Record<string, unknown>;
  errors: null;
}

type Message = [string | null, string | null, string, string, Record<string, unknown>];

interface Subscription {
  socket: WebSocket;
  topic: string;
  joinRef: string | null;
  bindings: Array<{ id: number; table: string }>;
}

export async function startRealtimeStandIn(): Promise<RealtimeStandIn> {
  const server = http.createServer();
  const sockets = new WebSocketServer({ server, path: "/realtime/v1/websocket" });
  const state = { joins: [] as RealtimeStandIn["joins"], leaves: [] as string[], subscriptions: [] as Subscription[], nextBindingId: 1 };
  const joinWaiters: Array<{ count: number; resolve: () => void }> = [];

  sockets.on("connection", (socket) => {
    socket.on("message", (raw) => {
      const message = JSON.parse(String(raw)) as Message;
      handleMessage(socket, message, state);
      for (const waiter of joinWaiters.filter((candidate) => state.joins.length >= candidate.count)) waiter.resolve();
    });
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    joins: state.joins,
    leaves: state.leaves,
    pushChange: (change) => pushChange(state.subscriptions, change),
    waitForJoins: (count) =>
      state.joins.length >= count ? Promise.resolve() : new Promise<void>((resolve) => joinWaiters.push({ count, resolve })),
    stop: async () => {
      for (const socket of sockets.clients) socket.terminate();
      await new Promise<void>((resolve) => sockets.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function handleMessage(socket: WebSocket, message: Message, state: { joins: RealtimeStandIn["joins"]; leaves: string[]; subscriptions: Subscription[]; nextBindingId: number }): void {
  const [joinRef, ref, topic, event, payload] = message;

  if (event === "phx_join") {
    const join = payload as unknown as JoinPayload;
    const bindings = join.config.postgres_changes.map((binding) => ({ ...binding, id: state.nextBindingId++ }));
    state.subscriptions.push({ socket, topic, joinRef, bindings });
    state.joins.push({ topic, payload: join });
    reply(socket, [joinRef, ref, topic, "phx_reply", { status: "ok", response: { postgres_changes: bindings } }]);
    return;
  }
  if (event === "phx_leave") {
    state.leaves.push(topic);
    state.subscriptions = state.subscriptions.filter((subscription) => subscription.topic !== topic);
    reply(socket, [joinRef, ref, topic, "phx_reply", { status: "ok", response: {} }]);
    return;
  }
  if (event === "heartbeat") reply(socket, [null, ref, "phoenix", "phx_reply", { status: "ok", response: {} }]);
}

function pushChange(subscriptions: Subscription[], change: ChangeData): void {
  for (const subscription of subscriptions) {
    const ids = subscription.bindings.filter((binding) => binding.table === change.table).map((binding) => binding.id);
    if (ids.length === 0) continue;
    reply(subscription.socket, [null, null, subscription.topic, "postgres_changes", { ids, data: change }]);
  }
}

function reply(socket: WebSocket, message: Message): void {
  socket.send(JSON.stringify(message));
}

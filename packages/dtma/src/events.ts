import type { Logger } from "pino";
import { LABEL_INSTANCE_ID, ResourceId, type ContainerEvent, type ContainerEventAction } from "@berth/shared";
import type { Engine, EngineEvent } from "./engine/engine.ts";

// Podman 4 reports a removed container as `remove`, where Docker reports `destroy`.
const FORWARDED_ACTIONS: Record<string, ContainerEventAction> = {
  start: "start",
  die: "die",
  oom: "oom",
  destroy: "destroy",
  remove: "destroy",
};

/** Converts an engine event to the heartbeat's event, or null for actions the agent does not forward. */
export function toContainerEvent(event: EngineEvent): ContainerEvent | null {
  const action = FORWARDED_ACTIONS[event.action];
  const instanceId = event.labels[LABEL_INSTANCE_ID];
  if (action === undefined || instanceId === undefined || !ResourceId.safeParse(instanceId).success) {
    return null;
  }
  return {
    instance_id: instanceId,
    container_id: event.containerId,
    action,
    time: event.time,
    exit_code: action === "die" ? event.exitCode : null,
  };
}

export interface EventWatcherOptions {
  engine: Engine;
  /** Labels every watched container carries. */
  labels: Record<string, string>;
  logger: Logger;
  onEvent: (event: ContainerEvent) => void;
  /** Called when the stream is open again after a failure, because events may have been missed. */
  onReconnect: () => void;
  retryMinMs?: number;
  retryMaxMs?: number;
}

export interface EventWatcher {
  stop(): Promise<void>;
}

/**
 * Follows the engine's container events and reopens the stream with exponential backoff
 * whenever the engine goes away, until `stop` is called. Each stream starts at the last event
 * seen, or at the watcher's start before the first event, so the engine replays the events from
 * before the stream opened or while it was down.
 */
export function watchEvents(options: EventWatcherOptions): EventWatcher {
  const controller = new AbortController();
  const done = followEvents(options, new EventCursor(Date.now()), controller.signal);
  return {
    async stop() {
      controller.abort();
      await done;
    },
  };
}

async function followEvents(options: EventWatcherOptions, cursor: EventCursor, signal: AbortSignal): Promise<void> {
  const retryMinMs = options.retryMinMs ?? 1_000;
  const retryMaxMs = options.retryMaxMs ?? 30_000;
  let failures = 0;

  while (!signal.aborted) {
    try {
      const events = await options.engine.events(options.labels, cursor.sinceSeconds, signal);
      if (failures > 0) {
        options.logger.info({ failures, since: cursor.sinceSeconds }, "container event stream reopened");
        failures = 0;
        options.onReconnect();
      }
      for await (const event of events) {
        forward(event, options, cursor);
      }
    } catch (error) {
      if (signal.aborted) {
        return;
      }
      options.logger.warn({ err: error, failures: failures + 1 }, "container event stream failed");
    }
    if (signal.aborted) {
      return;
    }

    // A stream that ended without an error counts as a failure too, so an engine that keeps
    // closing it is not reconnected in a tight loop.
    failures += 1;
    await sleep(Math.min(retryMaxMs, retryMinMs * 2 ** (failures - 1)), signal);
  }
}

function forward(event: EngineEvent, options: EventWatcherOptions, cursor: EventCursor): void {
  if (!cursor.advance(event)) {
    return;
  }
  const forwarded = hasLabels(event, options.labels) ? toContainerEvent(event) : null;
  if (forwarded !== null) {
    options.onEvent(forwarded);
  }
}

/**
 * The position in the engine's event history from which the next stream starts. The engine's
 * `since` has a resolution of one second, so a reopened stream replays the events of the cursor's
 * second that were already seen. The cursor keeps their keys to skip them.
 */
class EventCursor {
  sinceSeconds: number;
  private readonly seenInSecond = new Set<string>();

  constructor(startMs: number) {
    // NOTE: the first stream starts at the agent's clock. An engine on another host whose clock
    // runs ahead can leave out the events of the first moments after the agent started.
    this.sinceSeconds = Math.floor(startMs / 1000);
  }

  /** Moves the cursor to `event` and returns false when the event was already seen. */
  advance(event: EngineEvent): boolean {
    const key = `${event.containerId} ${event.action} ${event.time}`;
    if (this.seenInSecond.has(key)) {
      return false;
    }

    const second = Math.floor(Date.parse(event.time) / 1000);
    if (second > this.sinceSeconds) {
      this.sinceSeconds = second;
      this.seenInSecond.clear();
    }
    // Events of earlier seconds are not replayed by a stream that starts at the cursor.
    if (second === this.sinceSeconds) {
      this.seenInSecond.add(key);
    }
    return true;
  }
}

// Podman 4.3 matches several label filters of the event stream with OR, while its container
// list matches them with AND, so the event's labels are checked here again.
function hasLabels(event: EngineEvent, labels: Record<string, string>): boolean {
  return Object.entries(labels).every(([key, value]) => event.labels[key] === value);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(finish, ms);
    signal.addEventListener("abort", finish, { once: true });
    function finish() {
      clearTimeout(timer);
      signal.removeEventListener("abort", finish);
      resolve();
    }
  });
}

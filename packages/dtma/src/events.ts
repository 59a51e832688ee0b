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
 * whenever the engine goes away, until `stop` is called.
 */
export function watchEvents(options: EventWatcherOptions): EventWatcher {
  const controller = new AbortController();
  const done = followEvents(options, controller.signal);
  return {
    async stop() {
      controller.abort();
      await done;
    },
  };
}

async function followEvents(options: EventWatcherOptions, signal: AbortSignal): Promise<void> {
  const retryMinMs = options.retryMinMs ?? 1_000;
  const retryMaxMs = options.retryMaxMs ?? 30_000;
  let failures = 0;

  while (!signal.aborted) {
    try {
      const events = await options.engine.events(options.labels, signal);
      if (failures > 0) {
        options.logger.info({ failures }, "container event stream reopened");
        failures = 0;
        options.onReconnect();
      }
      for await (const event of events) {
        const forwarded = hasLabels(event, options.labels) ? toContainerEvent(event) : null;
        if (forwarded !== null) {
          options.onEvent(forwarded);
        }
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

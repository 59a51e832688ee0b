import { describe, expect, it } from "vitest";
import { instanceLabels, type ContainerEvent } from "@berth/shared";
import type { Engine, EngineEvent } from "../../src/engine/engine.ts";
import { watchEvents } from "../../src/events.ts";
import { scopeLabels } from "../../src/lookup.ts";
import { waitFor } from "../support/agent.ts";
import { captureLogger } from "../support/capture-logger.ts";

const TOOLBOX_ID = "7c1d3f4e-55aa-4b6c-9d2e-0f1a2b3c4d5e";
const INSTANCE_ID = "0b6f1a57-3c0e-4d55-9b1c-2f1a3e4d5c6b";

function engineEvent(
  action: string,
  labels: Record<string, string>,
  exitCode: number | null = null,
  time = "2026-12-04T20:00:00.000Z",
): EngineEvent {
  return { action, containerId: "c0ffee", labels, time, exitCode };
}

/** Returns a Unix second after the watcher's start, so the watcher's cursor moves to it. */
function nextSecond(): number {
  return Math.floor(Date.now() / 1000) + 5;
}

function isoTime(unixSecond: number, millis: number): string {
  return new Date(unixSecond * 1000 + millis).toISOString();
}

const ownLabels = instanceLabels({ instanceId: INSTANCE_ID, generation: 1, toolboxId: TOOLBOX_ID });

/**
 * Builds an engine whose event stream yields one batch per call, or fails when the batch is an
 * Error. `sinceSeconds` collects the start time that each call requested.
 */
function scriptedEngine(batches: Array<EngineEvent[] | Error>, sinceSeconds: number[] = []): Engine {
  let call = 0;
  const events = async (_labels: Record<string, string>, since: number) => {
    sinceSeconds.push(since);
    const batch = batches[Math.min(call, batches.length - 1)]!;
    call += 1;
    if (batch instanceof Error) {
      throw batch;
    }
    return (async function* () {
      yield* batch;
      // The last batch stays open like a live stream until the watcher stops.
      if (call >= batches.length) {
        await new Promise(() => {});
      }
    })();
  };
  return { events } as unknown as Engine;
}

async function collect(engine: Engine, expected: number) {
  const forwarded: ContainerEvent[] = [];
  let reconnects = 0;
  const watcher = watchEvents({
    engine,
    labels: scopeLabels(TOOLBOX_ID),
    logger: captureLogger().logger,
    onEvent: (event) => forwarded.push(event),
    onReconnect: () => (reconnects += 1),
    retryMinMs: 10,
    retryMaxMs: 20,
  });
  try {
    await waitFor(`${expected} forwarded events`, async () => (forwarded.length >= expected ? true : undefined), 2_000);
  } finally {
    void watcher.stop();
  }
  return { forwarded, reconnects };
}

describe("watchEvents", () => {
  it("forwards this toolbox's events", async () => {
    const engine = scriptedEngine([[engineEvent("die", { ...ownLabels, exitCode: "3" }, 3), engineEvent("remove", ownLabels)]]);
    const { forwarded } = await collect(engine, 2);

    expect(forwarded).toEqual([
      { instance_id: INSTANCE_ID, container_id: "c0ffee", action: "die", time: "2026-12-04T20:00:00.000Z", exit_code: 3 },
      { instance_id: INSTANCE_ID, container_id: "c0ffee", action: "destroy", time: "2026-12-04T20:00:00.000Z", exit_code: null },
    ]);
  });

  it("drops other toolboxes and other actions", async () => {
    const otherToolbox = instanceLabels({ instanceId: INSTANCE_ID, generation: 1, toolboxId: "11111111-2222-4333-8444-555555555555" });
    const engine = scriptedEngine([
      [
        engineEvent("die", otherToolbox, 1),
        engineEvent("create", ownLabels),
        engineEvent("start", { "dev.berth.toolbox-id": TOOLBOX_ID }),
        engineEvent("start", ownLabels),
      ],
    ]);
    const { forwarded } = await collect(engine, 1);

    expect(forwarded.map((event) => event.action)).toEqual(["start"]);
  });

  it("reopens a failed stream", async () => {
    const engine = scriptedEngine([new Error("connect ENOENT"), new Error("connect ENOENT"), [engineEvent("oom", ownLabels)]]);
    const { forwarded, reconnects } = await collect(engine, 1);

    expect(forwarded.map((event) => event.action)).toEqual(["oom"]);
    expect(reconnects).toBe(1);
  });

  it("opens the first stream at start", async () => {
    const sinceSeconds: number[] = [];
    const before = Math.floor(Date.now() / 1000);
    const { forwarded } = await collect(scriptedEngine([[engineEvent("start", ownLabels)]], sinceSeconds), 1);
    const after = Math.floor(Date.now() / 1000);

    expect(forwarded.map((event) => event.action)).toEqual(["start"]);
    expect(sinceSeconds[0]).toBeGreaterThanOrEqual(before);
    expect(sinceSeconds[0]).toBeLessThanOrEqual(after);
  });

  it("resumes a reopened stream at the last event", async () => {
    const second = nextSecond();
    const start = engineEvent("start", ownLabels, null, isoTime(second, 100));
    const die = engineEvent("die", { ...ownLabels, exitCode: "143" }, 143, isoTime(second, 200));
    const destroy = engineEvent("destroy", ownLabels, null, isoTime(second + 1, 0));
    const sinceSeconds: number[] = [];
    // The first stream ends after two events. The second replays them, as a stream that starts
    // at their second does, and then yields a new one.
    const engine = scriptedEngine([[start, die], [start, die, destroy]], sinceSeconds);
    const { forwarded, reconnects } = await collect(engine, 3);

    expect(forwarded.map((event) => event.action)).toEqual(["start", "die", "destroy"]);
    expect(reconnects).toBe(1);
    expect(sinceSeconds[1]).toBe(second);
  });

  it("forwards an event of the resumed second that it did not see", async () => {
    const second = nextSecond();
    const start = engineEvent("start", ownLabels, null, isoTime(second, 100));
    const die = engineEvent("die", { ...ownLabels, exitCode: "143" }, 143, isoTime(second, 900));
    const engine = scriptedEngine([[start], [start, die]]);
    const { forwarded } = await collect(engine, 2);

    expect(forwarded.map((event) => event.action)).toEqual(["start", "die"]);
  });
});

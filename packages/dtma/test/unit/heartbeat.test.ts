import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { HeartbeatRequest, type ContainerEvent } from "@berth/shared";
import { HeartbeatSender, type HeartbeatOptions } from "../../src/heartbeat.ts";
import { captureLogger } from "../support/capture-logger.ts";

const TOOLBOX_ID = "7c1d3f4e-55aa-4b6c-9d2e-0f1a2b3c4d5e";
const TOKEN = "heartbeat-token-0123456789";

interface Delivery {
  at: number;
  url: string;
  authorization: string | null;
  body: HeartbeatRequest;
}

function event(action: ContainerEvent["action"]): ContainerEvent {
  return {
    instance_id: "0b6f1a57-3c0e-4d55-9b1c-2f1a3e4d5c6b",
    container_id: "c0ffee",
    action,
    time: new Date().toISOString(),
    exit_code: action === "die" ? 3 : null,
  };
}

let deliveries: Delivery[];
let status: number;
let sender: HeartbeatSender | null;

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
  deliveries = [];
  status = 200;
  sender = null;
});

afterEach(async () => {
  await sender?.stop();
  vi.useRealTimers();
});

function startSender(overrides: Partial<HeartbeatOptions> = {}): HeartbeatSender {
  const fakeFetch = async (input: string | URL | Request, init?: RequestInit) => {
    const headers = new Headers(init?.headers);
    deliveries.push({
      at: Date.now(),
      url: String(input),
      authorization: headers.get("authorization"),
      body: HeartbeatRequest.parse(JSON.parse(String(init?.body))),
    });
    return new Response(null, { status });
  };
  sender = new HeartbeatSender({
    controlPlaneUrl: "http://127.0.0.1:9/functions/v1",
    token: TOKEN,
    toolboxId: TOOLBOX_ID,
    intervalMs: 60_000,
    debounceMs: 100,
    backoffMinMs: 1_000,
    backoffMaxMs: 8_000,
    timeoutMs: 5_000,
    collect: async () => ({ engineVersion: "fake-1.0", instances: [] }),
    logger: captureLogger().logger,
    fetch: fakeFetch as typeof fetch,
    ...overrides,
  });
  sender.start();
  return sender;
}

describe("HeartbeatSender", () => {
  it("sends the first heartbeat at start", async () => {
    startSender();
    await vi.advanceTimersByTimeAsync(0);

    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]?.url).toBe("http://127.0.0.1:9/functions/v1/dtma-heartbeat");
    expect(deliveries[0]?.authorization).toBe(`Bearer ${TOKEN}`);
    expect(deliveries[0]?.body.toolbox_id).toBe(TOOLBOX_ID);
    expect(deliveries[0]?.body.engine_version).toBe("fake-1.0");
  });

  it("sends on the interval", async () => {
    startSender();
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(60_000);

    expect(deliveries.map((delivery) => delivery.at)).toEqual([0, 60_000]);
  });

  it("sends soon after an event", async () => {
    const active = startSender();
    await vi.advanceTimersByTimeAsync(1_000);
    active.notify(event("die"));
    active.notify(event("start"));
    await vi.advanceTimersByTimeAsync(100);

    expect(deliveries).toHaveLength(2);
    expect(deliveries[1]?.at).toBe(1_100);
    expect(deliveries[1]?.body.events.map((sent) => sent.action)).toEqual(["die", "start"]);
  });

  it("backs off exponentially up to the cap", async () => {
    status = 500;
    startSender();
    await vi.advanceTimersByTimeAsync(30_000);
    const gaps = deliveries.slice(1).map((delivery, index) => delivery.at - deliveries[index]!.at);

    expect(gaps.slice(0, 5)).toEqual([1_000, 2_000, 4_000, 8_000, 8_000]);
  });

  it("ignores events for timing while failing", async () => {
    status = 503;
    const active = startSender();
    await vi.advanceTimersByTimeAsync(0);
    active.notify(event("die"));
    await vi.advanceTimersByTimeAsync(900);

    expect(deliveries).toHaveLength(1);
  });

  it("keeps events until delivered", async () => {
    status = 500;
    const active = startSender();
    await vi.advanceTimersByTimeAsync(0);
    active.notify(event("oom"));
    await vi.advanceTimersByTimeAsync(1_000);
    status = 200;
    await vi.advanceTimersByTimeAsync(2_000);
    const last = deliveries.at(-1);

    expect(deliveries).toHaveLength(3);
    expect(last?.body.events.map((sent) => sent.action)).toEqual(["oom"]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(deliveries.at(-1)?.body.events).toEqual([]);
  });

  it("backs off when the engine is unavailable", async () => {
    let attempts = 0;
    startSender({
      collect: async () => {
        attempts += 1;
        throw new Error("container engine is not reachable (ENOENT)");
      },
    });
    await vi.advanceTimersByTimeAsync(3_500);

    expect(attempts).toBe(3);
    expect(deliveries).toHaveLength(0);
  });

  it("stops sending after stop", async () => {
    const active = startSender();
    await vi.advanceTimersByTimeAsync(0);
    await active.stop();
    active.notify(event("die"));
    await vi.advanceTimersByTimeAsync(120_000);

    expect(deliveries).toHaveLength(1);
  });
});

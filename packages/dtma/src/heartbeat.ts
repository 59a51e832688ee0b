import type { Logger } from "pino";
import type { ContainerEvent, HeartbeatRequest, InstanceObservation } from "@berth/shared";
import { AGENT_VERSION } from "./version.ts";

export interface HeartbeatOptions {
  /** The control plane's functions base URL; heartbeats go to `<url>/dtma-heartbeat`. */
  controlPlaneUrl: string;
  token: string;
  toolboxId: string;
  intervalMs: number;
  debounceMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  timeoutMs: number;
  /** Reads the engine version and the inventory; rejects when the engine is unavailable. */
  collect: () => Promise<{ engineVersion: string; instances: InstanceObservation[] }>;
  logger: Logger;
  fetch?: typeof fetch;
}

// Events waiting for delivery while the control plane is down. Older ones are dropped first,
// because every heartbeat carries the full inventory and the inventory is what stays correct.
const MAX_PENDING_EVENTS = 500;

/**
 * Sends the inventory to the control plane on a timer and shortly after container events.
 * While deliveries fail it retries with exponential backoff up to `backoffMaxMs` and ignores
 * events for scheduling, so a failing control plane is not flooded.
 */
export class HeartbeatSender {
  private readonly fetch: typeof fetch;
  private pending: ContainerEvent[] = [];
  private failures = 0;
  private droppedEvents = 0;
  private timer: NodeJS.Timeout | null = null;
  private dueAt = Number.POSITIVE_INFINITY;
  private sending: Promise<void> | null = null;
  private wantsSoonerSend = false;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(private readonly options: HeartbeatOptions) {
    this.fetch = options.fetch ?? fetch;
  }

  /** Sends the first heartbeat now and keeps sending until `stop`. */
  start(): void {
    this.schedule(0);
  }

  /** Queues an event and schedules a heartbeat after the debounce delay. */
  notify(event: ContainerEvent | null): void {
    if (event !== null) {
      this.queue(event);
    }
    this.requestSoon();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    this.abort.abort();
    await this.sending;
  }

  private queue(event: ContainerEvent): void {
    this.pending.push(event);
    if (this.pending.length > MAX_PENDING_EVENTS) {
      this.pending.shift();
      this.droppedEvents += 1;
    }
  }

  private requestSoon(): void {
    if (this.sending !== null) {
      this.wantsSoonerSend = true;
      return;
    }
    if (this.failures === 0) {
      this.schedule(this.options.debounceMs);
    }
  }

  /** Sets the timer to `delayMs` unless it already fires sooner. */
  private schedule(delayMs: number, force = false): void {
    if (this.stopped) {
      return;
    }
    const dueAt = Date.now() + delayMs;
    if (!force && this.timer !== null && this.dueAt <= dueAt) {
      return;
    }
    this.clearTimer();
    this.dueAt = dueAt;
    this.timer = setTimeout(() => this.fire(), delayMs);
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.dueAt = Number.POSITIVE_INFINITY;
    }
  }

  private fire(): void {
    this.timer = null;
    this.dueAt = Number.POSITIVE_INFINITY;
    this.sending = this.sendOnce().finally(() => {
      this.sending = null;
    });
  }

  private async sendOnce(): Promise<void> {
    const events = this.pending.slice();
    let delivered = false;
    try {
      await this.deliver(events);
      delivered = true;
    } catch (error) {
      this.recordFailure(error);
    }
    if (this.stopped) {
      return;
    }

    if (delivered) {
      this.recordSuccess(events);
    }
    this.scheduleNext();
  }

  private async deliver(events: ContainerEvent[]): Promise<void> {
    const { engineVersion, instances } = await this.options.collect();
    const body: HeartbeatRequest = {
      toolbox_id: this.options.toolboxId,
      agent_version: AGENT_VERSION,
      engine_version: engineVersion,
      sent_at: new Date().toISOString(),
      instances,
      events,
    };

    const response = await this.fetch(`${this.options.controlPlaneUrl}/dtma-heartbeat`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${this.options.token}` },
      body: JSON.stringify(body),
      signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.options.timeoutMs)]),
    });
    await response.body?.cancel();
    if (!response.ok) {
      throw new Error(`control plane responded with HTTP ${response.status}`);
    }
  }

  private recordSuccess(sentEvents: ContainerEvent[]): void {
    this.options.logger.debug({ events: sentEvents.length }, "heartbeat delivered");
    if (this.failures > 0) {
      this.options.logger.info({ failures: this.failures }, "heartbeat delivered after failures");
    }
    if (this.droppedEvents > 0) {
      this.options.logger.warn({ dropped_events: this.droppedEvents }, "dropped container events while the control plane was unreachable");
      this.droppedEvents = 0;
    }
    this.failures = 0;
    const sent = new Set(sentEvents);
    this.pending = this.pending.filter((event) => !sent.has(event));
  }

  private recordFailure(error: unknown): void {
    this.failures += 1;
    if (!this.stopped) {
      this.options.logger.warn(
        { err: error, failures: this.failures, retry_in_ms: this.backoffMs() },
        "heartbeat failed",
      );
    }
  }

  private scheduleNext(): void {
    if (this.failures > 0) {
      this.schedule(this.backoffMs(), true);
    } else if (this.wantsSoonerSend || this.pending.length > 0) {
      this.schedule(this.options.debounceMs, true);
    } else {
      this.schedule(this.options.intervalMs, true);
    }
    this.wantsSoonerSend = false;
  }

  private backoffMs(): number {
    const exponent = Math.min(this.failures - 1, 30);
    return Math.min(this.options.backoffMaxMs, this.options.backoffMinMs * 2 ** exponent);
  }
}

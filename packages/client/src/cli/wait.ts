import { setTimeout as sleep } from "node:timers/promises";
import type { InstanceResponse, InstanceStatus } from "@berth/shared";
import { BerthError } from "../errors.ts";
import type { InstancesApi } from "../instances.ts";

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Called with every instance read while waiting, for the spinner. */
  onPoll?: (instance: InstanceResponse) => void;
}

export type WaitOutcome =
  | { kind: "settled"; instance: InstanceResponse }
  /** GET returned 404, which after a removal means the row is gone from the owner's view. */
  | { kind: "gone" }
  | { kind: "timed_out"; instance: InstanceResponse };

const DEFAULT_INTERVAL_MS = 1000;

/**
 * Returns whether an instance has stopped moving: it reached its desired state, or it failed.
 * A status that is not transitional but differs from the desired state (`stopped` right after a
 * start request, `unknown` while the host is unreachable) still counts as moving, because the
 * control plane is working towards the desired state.
 */
export function isSettled(instance: Pick<InstanceResponse, "status" | "desired_state">): boolean {
  if (instance.status === "failed") return true;
  return (instance.status as InstanceStatus) === instance.desired_state;
}

/** Polls `GET /instances/{id}` until the instance settles, disappears or the timeout passes. */
export async function waitUntilSettled(instances: InstancesApi, initial: InstanceResponse, options: WaitOptions): Promise<WaitOutcome> {
  const deadline = Date.now() + options.timeoutMs;
  let latest = initial;

  while (!isSettled(latest)) {
    if (Date.now() >= deadline) return { kind: "timed_out", instance: latest };
    await sleep(Math.min(options.intervalMs ?? DEFAULT_INTERVAL_MS, Math.max(0, deadline - Date.now())));

    try {
      latest = await instances.get(latest.id);
    } catch (error) {
      if (error instanceof BerthError && error.status === 404) return { kind: "gone" };
      throw error;
    }
    options.onPoll?.(latest);
  }
  return { kind: "settled", instance: latest };
}

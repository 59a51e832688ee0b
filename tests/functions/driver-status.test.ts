import { describe, expect, test } from "vitest";
import { INSTANCE_STATUSES, isTransitionAllowed, type InstanceObservation, type InstanceStatus } from "@berth/shared";
import { alignAction, settledStatus, transitionalStatus, type DriveAction } from "../../supabase/functions/_shared/driver-status.ts";

const ACTIONS: DriveAction[] = ["deploy", "start", "stop", "restart", "remove"];
const FINAL_BY_ACTION: Record<DriveAction, InstanceStatus[]> = {
  deploy: ["running", "stopped", "failed"],
  start: ["running", "failed"],
  stop: ["stopped", "running"],
  restart: ["running", "failed"],
  remove: ["removed"],
};

function observation(state: string, overrides: Partial<InstanceObservation> = {}): InstanceObservation {
  return {
    instance_id: "7d1c4f5e-2b9a-4c3d-8e6f-0a1b2c3d4e5f",
    container_id: "c1",
    state,
    exit_code: null,
    oom_killed: false,
    restart_count: 0,
    generation: 1,
    host_port: 30001,
    started_at: null,
    finished_at: null,
    health: null,
    ...overrides,
  };
}

describe("driver status decisions", () => {
  test("every transitional status is reachable", () => {
    for (const action of ACTIONS) {
      for (const current of INSTANCE_STATUSES.filter((status) => status !== "removed" && status !== "pending")) {
        const transitional = transitionalStatus(action, current);
        if (transitional !== null && transitional !== current) {
          expect(isTransitionAllowed(current, transitional), `${action} from ${current} via ${transitional}`).toBe(true);
        }
      }
    }
  });

  test("final statuses follow the transitional one", () => {
    for (const action of ACTIONS) {
      for (const current of INSTANCE_STATUSES.filter((status) => status !== "removed" && status !== "pending")) {
        const from = transitionalStatus(action, current) ?? current;
        for (const final of FINAL_BY_ACTION[action]) {
          const reachable = final === from || isTransitionAllowed(from, final) || isTransitionAllowed(from, "unknown");
          expect(reachable, `${action} from ${current}: ${from} -> ${final}`).toBe(true);
        }
      }
    }
  });

  test.each([
    ["start", "pending", "running", "deploy"],
    ["stop", "pending", "stopped", "deploy"],
    ["remove", "pending", "removed", "remove"],
    ["start", "running", "stopped", "stop"],
    ["stop", "running", "running", "start"],
    ["restart", "stopped", "removed", "remove"],
    ["deploy", "failed", "stopped", "deploy"],
    ["restart", "running", "running", "restart"],
  ] as const)("align %s on %s wanting %s", (action, status, desired, expected) => {
    expect(alignAction(action, { status, desired_state: desired })).toBe(expected);
  });

  test("settled status from observation", () => {
    expect(settledStatus("running", observation("running")).status).toBe("running");
    expect(settledStatus("stopped", observation("exited", { exit_code: 0 })).status).toBe("stopped");
    expect(settledStatus("stopped", null)).toMatchObject({ status: "stopped", reasonCode: "ContainerStopped" });
    expect(settledStatus("removed", null)).toMatchObject({ status: "removed", reasonCode: "ContainerRemoved" });
  });

  test("exited container that should run fails", () => {
    const settled = settledStatus("running", observation("exited", { exit_code: 137, oom_killed: true }));

    expect(settled.status).toBe("failed");
    expect(settled.reasonCode).toBe("ContainerExited");
    expect(settled.message).toContain("exit code 137");
    expect(settled.message).toContain("out of memory");
  });
});

import { generationFromLabels, type InstanceObservation } from "@berth/shared";
import type { ContainerDetails } from "./engine/engine.ts";

// Engine states in which a container is not running a process, so its last exit code applies.
const FINISHED_STATES = new Set(["exited", "dead", "stopped"]);

/** Builds the observation of an instance from its container as the engine reports it. */
export function observationOf(instanceId: string, container: ContainerDetails): InstanceObservation {
  return {
    instance_id: instanceId,
    container_id: container.id,
    state: container.state,
    exit_code: FINISHED_STATES.has(container.state) ? container.exitCode : null,
    oom_killed: container.oomKilled,
    restart_count: container.restartCount,
    generation: generationFromLabels(container.labels),
    host_port: container.hostPort,
    started_at: container.startedAt,
    finished_at: container.finishedAt,
    health: container.health,
  };
}

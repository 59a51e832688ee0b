import {
  LABEL_INSTANCE_ID,
  LABEL_MANAGED,
  LABEL_TOOLBOX_ID,
  MANAGED_LABEL_VALUE,
  containerNameFor,
  generationFromLabels,
} from "@berth/shared";
import type { ContainerDetails, Engine } from "./engine/engine.ts";

/**
 * Returns the labels that select the containers this agent manages. With a toolbox id the
 * agent lists only its own toolbox's containers, so several agents can share one engine.
 */
export function scopeLabels(toolboxId: string | null): Record<string, string> {
  const labels: Record<string, string> = { [LABEL_MANAGED]: MANAGED_LABEL_VALUE };
  if (toolboxId !== null) {
    labels[LABEL_TOOLBOX_ID] = toolboxId;
  }
  return labels;
}

/** The containers that belong to one instance: the current one first, then duplicates. */
export interface InstanceContainers {
  current: ContainerDetails | null;
  duplicates: ContainerDetails[];
  /** A container with the instance's name that belongs to another toolbox or instance. */
  foreign: ContainerDetails | null;
}

/**
 * Finds an instance's containers by its label and by its derived name. The name finds a
 * container created by hand without labels. The label finds a labelled container that was renamed.
 */
export async function findInstanceContainers(
  engine: Engine,
  instanceId: string,
  toolboxId: string | null,
): Promise<InstanceContainers> {
  const summaries = await engine.listContainers({ ...scopeLabels(toolboxId), [LABEL_INSTANCE_ID]: instanceId });
  const labelled = await Promise.all(summaries.map((summary) => engine.inspect(summary.id)));
  const containers = labelled.filter((container): container is ContainerDetails => container !== null);

  const named = await engine.inspect(containerNameFor(instanceId));
  let foreign: ContainerDetails | null = null;
  if (named !== null && !containers.some((container) => container.id === named.id)) {
    if (belongsTo(named, instanceId, toolboxId)) {
      containers.push(named);
    } else {
      foreign = named;
    }
  }

  const ordered = containers.sort((left, right) => compareForCurrent(left, right, instanceId));
  return { current: ordered[0] ?? null, duplicates: ordered.slice(1), foreign };
}

/**
 * Tells whether a container found by name may be treated as the instance's. A container with
 * no labels at all counts, because only the agent uses the `berth-<id>` name space.
 */
function belongsTo(container: ContainerDetails, instanceId: string, toolboxId: string | null): boolean {
  const labelledInstance = container.labels[LABEL_INSTANCE_ID];
  if (labelledInstance !== undefined && labelledInstance !== instanceId) {
    return false;
  }
  const labelledToolbox = container.labels[LABEL_TOOLBOX_ID];
  return toolboxId === null || labelledToolbox === undefined || labelledToolbox === toolboxId;
}

// Sorts the container with the derived name first, then the newest generation, then a running one.
function compareForCurrent(left: ContainerDetails, right: ContainerDetails, instanceId: string): number {
  const name = containerNameFor(instanceId);
  const byName = Number(right.name === name) - Number(left.name === name);
  if (byName !== 0) {
    return byName;
  }
  const byGeneration = (generationFromLabels(right.labels) ?? -1) - (generationFromLabels(left.labels) ?? -1);
  if (byGeneration !== 0) {
    return byGeneration;
  }
  return Number(right.running) - Number(left.running);
}

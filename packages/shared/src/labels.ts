/**
 * Container labels and names through which the agent finds its containers again after any
 * restart. They are the whole of the agent's memory, so changing one orphans every running
 * container on every host.
 */
export const LABEL_MANAGED = "dev.berth.managed";
export const LABEL_INSTANCE_ID = "dev.berth.instance-id";
export const LABEL_TOOLBOX_ID = "dev.berth.toolbox-id";
export const LABEL_GENERATION = "dev.berth.generation";

/** Value of `LABEL_MANAGED` on every container the agent creates. */
export const MANAGED_LABEL_VALUE = "true";

export const CONTAINER_NAME_PREFIX = "berth-";

/**
 * Returns the deterministic container name of an instance, `berth-<id>` in lower case, so a
 * retried create collides with the first one instead of starting a duplicate.
 */
export function containerNameFor(instanceId: string): string {
  return `${CONTAINER_NAME_PREFIX}${instanceId.toLowerCase()}`;
}

/** Returns the instance id encoded in a container name, or null for any other name. */
export function instanceIdFromContainerName(name: string): string | null {
  const bare = name.startsWith("/") ? name.slice(1) : name;
  if (!bare.startsWith(CONTAINER_NAME_PREFIX)) {
    return null;
  }
  const id = bare.slice(CONTAINER_NAME_PREFIX.length);
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id) ? id : null;
}

/** Builds the labels of an instance's container for one generation of its spec. */
export function instanceLabels(input: {
  instanceId: string;
  generation: number;
  toolboxId?: string | null;
}): Record<string, string> {
  const labels: Record<string, string> = {
    [LABEL_MANAGED]: MANAGED_LABEL_VALUE,
    [LABEL_INSTANCE_ID]: input.instanceId.toLowerCase(),
    [LABEL_GENERATION]: String(input.generation),
  };
  if (input.toolboxId) {
    labels[LABEL_TOOLBOX_ID] = input.toolboxId.toLowerCase();
  }
  return labels;
}

/** Reads the generation label, or returns null when it is missing or not a non-negative integer. */
export function generationFromLabels(labels: Record<string, string> | null | undefined): number | null {
  const raw = labels?.[LABEL_GENERATION];
  if (raw === undefined || !/^\d{1,16}$/.test(raw)) {
    return null;
  }
  const generation = Number(raw);
  return Number.isSafeInteger(generation) ? generation : null;
}

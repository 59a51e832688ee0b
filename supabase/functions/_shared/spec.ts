import type { InstanceEnsureRequest } from "@berth/shared";
import type { InstanceRow, Registry } from "./registry.ts";

/**
 * Builds the body of the agent's `PUT /v1/instances/{id}` from an instance row and its secret
 * values. The generation is `spec_generation`, which moves only when the spec changes: using
 * `generation`, which every start or stop bumps, would make the agent recreate the container on
 * each of them. Secrets override plain variables of the same name, which the schema forbids anyway.
 */
export function buildEnsureRequest(instance: InstanceRow, secrets: Record<string, string>): InstanceEnsureRequest {
  return {
    generation: instance.spec_generation,
    image: instance.image,
    port: instance.container_port,
    host_port: instance.host_port,
    desired_state: instance.desired_state === "stopped" ? "stopped" : "running",
    command: instance.command,
    env: { ...instance.env, ...secrets },
    memory_mb: instance.memory_mb,
    cpus: instance.cpus,
    toolbox_id: instance.toolbox_id,
  };
}

/** Reads the secret values of an instance and builds its agent spec. The result holds secrets: never log it. */
export async function loadEnsureRequest(registry: Pick<Registry, "instanceSecretValues">, instance: InstanceRow): Promise<InstanceEnsureRequest> {
  return buildEnsureRequest(instance, await registry.instanceSecretValues(instance.id));
}

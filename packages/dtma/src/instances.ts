import type { Logger } from "pino";
import {
  LABEL_INSTANCE_ID,
  ResourceId,
  containerNameFor,
  generationFromLabels,
  instanceLabels,
  type InstanceEnsureRequest,
  type InstanceObservation,
  type LogsResponse,
} from "@berth/shared";
import type { ContainerDetails, ContainerSpec, Engine } from "./engine/engine.ts";
import { EngineError } from "./engine/engine.ts";
import { AgentError } from "./errors.ts";
import { KeyedMutex } from "./keyed-mutex.ts";
import { findInstanceContainers, scopeLabels, type InstanceContainers } from "./lookup.ts";
import { observationOf } from "./observation.ts";

export interface InstanceServiceOptions {
  engine: Engine;
  /** The toolbox this agent serves; null manages every container that carries the agent's labels. */
  toolboxId: string | null;
  publishIp: string;
  stopTimeoutSeconds: number;
}

export interface EnsureResult {
  observation: InstanceObservation;
  /** True when this request created the container, false when it kept or adopted one. */
  created: boolean;
}

/**
 * The agent's operations on instances. It keeps no record of containers between calls:
 * every operation finds the instance's container again through its labels and name.
 */
export class InstanceService {
  private readonly engine: Engine;
  private readonly locks = new KeyedMutex();

  constructor(private readonly options: InstanceServiceOptions) {
    this.engine = options.engine;
  }

  /**
   * Makes the instance's container match `spec`: keeps a container of the same generation,
   * replaces one of an older generation once the new image is known to be present, creates
   * a missing one, then starts or stops it to match `desired_state`.
   */
  async ensure(instanceId: string, spec: InstanceEnsureRequest, log: Logger): Promise<EnsureResult> {
    this.checkToolbox(spec);

    return this.locks.run(instanceId, async () => {
      const found = await this.find(instanceId, log);
      const current = found.current;
      if (current !== null) {
        const upToDate = this.hasRequestedGeneration(current, spec, log);
        if (upToDate) {
          return { observation: await this.converge(instanceId, current, spec, log), created: false };
        }
      }

      await this.requireImage(spec.image);
      if (current !== null) {
        log.info({ container_id: current.id, generation: generationFromLabels(current.labels) }, "replacing container of an older generation");
        await this.engine.remove(current.id);
      }
      return this.createAndConverge(instanceId, spec, log);
    });
  }

  async start(instanceId: string, log: Logger): Promise<InstanceObservation> {
    return this.locks.run(instanceId, async () => {
      const container = await this.require(instanceId, log);
      await this.startContainer(container.id, container.hostPort);
      return this.observe(instanceId, container.id);
    });
  }

  async stop(instanceId: string, log: Logger): Promise<InstanceObservation> {
    return this.locks.run(instanceId, async () => {
      const container = await this.require(instanceId, log);
      await this.engine.stop(container.id, this.options.stopTimeoutSeconds);
      return this.observe(instanceId, container.id);
    });
  }

  async restart(instanceId: string, log: Logger): Promise<InstanceObservation> {
    return this.locks.run(instanceId, async () => {
      const container = await this.require(instanceId, log);
      await withPortError(container.hostPort, () => this.engine.restart(container.id, this.options.stopTimeoutSeconds));
      return this.observe(instanceId, container.id);
    });
  }

  /** Removes every container of the instance; an instance without one is already removed. */
  async remove(instanceId: string, log: Logger): Promise<void> {
    await this.locks.run(instanceId, async () => {
      const found = await findInstanceContainers(this.engine, instanceId, this.options.toolboxId);
      for (const container of [found.current, ...found.duplicates]) {
        if (container !== null) {
          await this.engine.remove(container.id);
          log.info({ container_id: container.id }, "removed container");
        }
      }
    });
  }

  async logs(instanceId: string, tail: number, log: Logger): Promise<LogsResponse> {
    const container = await this.require(instanceId, log);
    const lines = await this.engine.logs(container.id, tail);
    return { instance_id: instanceId, container_id: container.id, lines };
  }

  /** Returns one observation per managed container, skipping containers removed meanwhile. */
  async observeAll(): Promise<InstanceObservation[]> {
    const summaries = await this.engine.listContainers(scopeLabels(this.options.toolboxId));
    const details = await Promise.all(summaries.map((summary) => this.engine.inspect(summary.id)));
    const observations: InstanceObservation[] = [];
    for (const container of details) {
      const instanceId = container?.labels[LABEL_INSTANCE_ID];
      if (container && instanceId && ResourceId.safeParse(instanceId).success) {
        observations.push(observationOf(instanceId, container));
      }
    }
    return observations;
  }

  private checkToolbox(spec: InstanceEnsureRequest): void {
    const own = this.options.toolboxId;
    const requested = spec.toolbox_id?.toLowerCase();
    if (own !== null && requested !== undefined && requested !== own) {
      throw new AgentError("invalid_request", "The request names a different toolbox than this agent serves.", {
        fields: [{ field: "toolbox_id", message: `must be ${own}, the toolbox of this agent` }],
      });
    }
  }

  /** Finds the instance's containers and removes duplicates left by an earlier race or crash. */
  private async find(instanceId: string, log: Logger): Promise<InstanceContainers> {
    const found = await findInstanceContainers(this.engine, instanceId, this.options.toolboxId);
    for (const duplicate of found.duplicates) {
      log.warn({ container_id: duplicate.id, container_name: duplicate.name }, "removing duplicate container of instance");
      await this.engine.remove(duplicate.id);
    }
    return found;
  }

  private async require(instanceId: string, log: Logger): Promise<ContainerDetails> {
    const found = await findInstanceContainers(this.engine, instanceId, this.options.toolboxId);
    if (found.current === null) {
      log.info("no container for instance");
      throw new AgentError("instance_not_found", `No container exists for instance ${instanceId}.`);
    }
    return found.current;
  }

  /**
   * Returns true when the current container already has the requested generation. Rejects a
   * request older than the container, because applying it would roll a newer spec back.
   */
  private hasRequestedGeneration(
    current: ContainerDetails,
    spec: InstanceEnsureRequest,
    log: Logger,
  ): boolean {
    const generation = generationFromLabels(current.labels);
    if (generation !== null && generation > spec.generation) {
      throw new AgentError("conflict", `The container already runs generation ${generation}, newer than ${spec.generation}.`, {
        field: "generation",
        current_generation: generation,
        requested_generation: spec.generation,
      });
    }
    if (generation !== spec.generation) {
      return false;
    }

    if (current.image !== spec.image || current.hostPort !== spec.host_port) {
      log.warn(
        { container_id: current.id, container_image: current.image, container_host_port: current.hostPort },
        "kept container of the same generation although its image or host port differs from the request",
      );
    }
    log.info({ container_id: current.id, generation }, "kept container of the requested generation");
    return true;
  }

  private async requireImage(image: string): Promise<void> {
    // NOTE: the agent never pulls. Images must already be on the host, which also keeps a
    // failed pull from ever taking down the container of the previous generation.
    if (!(await this.engine.imageExists(image))) {
      throw new AgentError("image_not_found", `Image ${image} is not present on this host; load or pull it there first.`, {
        image,
      });
    }
  }

  private async createAndConverge(instanceId: string, spec: InstanceEnsureRequest, log: Logger): Promise<EnsureResult> {
    const { container, created } = await this.createOrAdopt(instanceId, spec, log);
    return { observation: await this.converge(instanceId, container, spec, log), created };
  }

  /**
   * Creates the container. When the engine reports the name as taken, another agent process or
   * a request outside this process won the race, so the winner is adopted if it has the
   * requested generation and replaced if it is older.
   */
  private async createOrAdopt(
    instanceId: string,
    spec: InstanceEnsureRequest,
    log: Logger,
  ): Promise<{ container: ContainerDetails; created: boolean }> {
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      try {
        const id = await this.engine.create(this.containerSpec(instanceId, spec));
        log.info({ container_id: id, generation: spec.generation }, "created container");
        return { container: await this.inspectCreated(id), created: true };
      } catch (error) {
        if (!(error instanceof EngineError && error.kind === "name_conflict")) {
          throw error;
        }
      }

      const adopted = await this.resolveNameConflict(instanceId, spec, log);
      if (adopted !== null) {
        return { container: adopted, created: false };
      }
    }
    throw new AgentError("conflict", `Could not create the container of instance ${instanceId}: its name stayed taken.`);
  }

  private async resolveNameConflict(
    instanceId: string,
    spec: InstanceEnsureRequest,
    log: Logger,
  ): Promise<ContainerDetails | null> {
    const found = await this.find(instanceId, log);
    if (found.foreign !== null) {
      throw new AgentError("conflict", `Container name ${containerNameFor(instanceId)} is used by a container that this agent does not manage.`, {
        container_id: found.foreign.id,
      });
    }
    if (found.current === null) {
      return null;
    }
    if (this.hasRequestedGeneration(found.current, spec, log)) {
      log.info({ container_id: found.current.id }, "adopted container created concurrently");
      return found.current;
    }
    await this.engine.remove(found.current.id);
    return null;
  }

  private async inspectCreated(id: string): Promise<ContainerDetails> {
    const container = await this.engine.inspect(id);
    if (container === null) {
      throw new AgentError("instance_not_found", "The new container was removed while the request ran.");
    }
    return container;
  }

  /** Starts or stops the container to match the desired state and returns its observation. */
  private async converge(
    instanceId: string,
    container: ContainerDetails,
    spec: InstanceEnsureRequest,
    log: Logger,
  ): Promise<InstanceObservation> {
    // A restarting container is handled by its restart policy; starting it again would fail.
    if (spec.desired_state === "running" && !container.running && container.state !== "restarting") {
      await this.startContainer(container.id, container.hostPort ?? spec.host_port);
      log.info({ container_id: container.id }, "started container");
    }
    if (spec.desired_state === "stopped" && container.running) {
      await this.engine.stop(container.id, this.options.stopTimeoutSeconds);
      log.info({ container_id: container.id }, "stopped container");
    }
    return this.observe(instanceId, container.id);
  }

  private async startContainer(id: string, hostPort: number | null): Promise<void> {
    await withPortError(hostPort, () => this.engine.start(id));
  }

  private async observe(instanceId: string, containerId: string): Promise<InstanceObservation> {
    const container = await this.engine.inspect(containerId);
    if (container === null) {
      throw new AgentError("instance_not_found", `The container of instance ${instanceId} was removed while the request ran.`);
    }
    return observationOf(instanceId, container);
  }

  private containerSpec(instanceId: string, spec: InstanceEnsureRequest): ContainerSpec {
    return {
      name: containerNameFor(instanceId),
      image: spec.image,
      command: spec.command ?? null,
      env: spec.env ?? {},
      labels: instanceLabels({
        instanceId,
        generation: spec.generation,
        toolboxId: spec.toolbox_id ?? this.options.toolboxId,
      }),
      containerPort: spec.port,
      hostPort: spec.host_port,
      publishIp: this.options.publishIp,
      memoryBytes: spec.memory_mb == null ? null : spec.memory_mb * 1024 * 1024,
      nanoCpus: spec.cpus == null ? null : Math.round(spec.cpus * 1e9),
    };
  }
}

/** Runs a start or restart and reports a taken host port with the port number. */
async function withPortError(hostPort: number | null, operation: () => Promise<void>): Promise<void> {
  try {
    await operation();
  } catch (error) {
    if (error instanceof EngineError && error.kind === "port_in_use") {
      throw new AgentError("port_in_use", `Host port ${hostPort ?? "of the container"} is already in use on this host.`, {
        port: hostPort,
      });
    }
    throw error;
  }
}

import { randomBytes } from "node:crypto";
import type { LogLine } from "@berth/shared";
import type { ContainerDetails, ContainerSpec, ContainerSummary, Engine, EngineEvent } from "../../src/engine/engine.ts";
import { EngineError } from "../../src/engine/engine.ts";

interface FakeContainer {
  details: ContainerDetails;
  spec: ContainerSpec | null;
}

/**
 * An in-memory `Engine` for tests of the agent's logic. Names are unique like in Docker, and
 * hooks let a test run code inside a call, for example to create a competing container.
 */
export class FakeEngine implements Engine {
  readonly containers = new Map<string, FakeContainer>();
  readonly images = new Set<string>();
  readonly calls: string[] = [];
  /** Host ports that another process holds; starting a container that publishes one fails. */
  readonly busyPorts = new Set<number>();
  available = true;
  beforeCreate: ((spec: ContainerSpec) => Promise<void> | void) | null = null;

  async ping(): Promise<void> {
    this.check("ping");
  }

  async version(): Promise<string> {
    this.check("version");
    return "fake-1.0";
  }

  async listContainers(labels: Record<string, string>): Promise<ContainerSummary[]> {
    this.check("list");
    return [...this.containers.values()]
      .filter(({ details }) => Object.entries(labels).every(([key, value]) => details.labels[key] === value))
      .map(({ details }) => ({ id: details.id, name: details.name, labels: details.labels, state: details.state }));
  }

  async inspect(idOrName: string): Promise<ContainerDetails | null> {
    this.check("inspect");
    const found = this.find(idOrName);
    return found === undefined ? null : structuredClone(found.details);
  }

  async imageExists(reference: string): Promise<boolean> {
    this.check("imageExists");
    return this.images.has(reference);
  }

  async create(spec: ContainerSpec): Promise<string> {
    this.check("create");
    await this.beforeCreate?.(spec);
    if (this.find(spec.name) !== undefined) {
      throw new EngineError("name_conflict", `the container name "${spec.name}" is already in use`, 409);
    }
    if (!this.images.has(spec.image)) {
      throw new EngineError("image_not_found", `no such image: ${spec.image}`, 404);
    }
    return this.add({ name: spec.name, image: spec.image, labels: spec.labels, hostPort: spec.hostPort }, spec);
  }

  /** Adds a container as if someone created it directly on the engine. */
  add(
    input: { name: string; image: string; labels: Record<string, string>; hostPort: number | null; running?: boolean },
    spec: ContainerSpec | null = null,
  ): string {
    const id = randomBytes(32).toString("hex");
    const details: ContainerDetails = {
      id,
      name: input.name,
      image: input.image,
      labels: { ...input.labels },
      state: input.running ? "running" : "created",
      running: input.running ?? false,
      exitCode: 0,
      oomKilled: false,
      restartCount: 0,
      startedAt: input.running ? new Date().toISOString() : null,
      finishedAt: null,
      health: null,
      hostPort: input.hostPort,
      tty: false,
    };
    this.containers.set(id, { details, spec });
    return id;
  }

  async start(id: string): Promise<void> {
    const container = this.require("start", id);
    if (container.details.running) {
      return;
    }
    if (container.details.hostPort !== null && this.busyPorts.has(container.details.hostPort)) {
      throw new EngineError("port_in_use", `listen tcp4 127.0.0.1:${container.details.hostPort}: bind: address already in use`, 500);
    }
    Object.assign(container.details, { running: true, state: "running", startedAt: new Date().toISOString() });
  }

  async stop(id: string): Promise<void> {
    const container = this.require("stop", id);
    if (container.details.running) {
      Object.assign(container.details, { running: false, state: "exited", exitCode: 0, finishedAt: new Date().toISOString() });
    }
  }

  async restart(id: string, timeoutSeconds: number): Promise<void> {
    await this.stop(id);
    await this.start(id);
    this.calls.push(`restart:${timeoutSeconds}`);
  }

  async remove(id: string): Promise<void> {
    this.check("remove");
    const found = this.find(id);
    if (found !== undefined) {
      this.containers.delete(found.details.id);
    }
  }

  async logs(id: string): Promise<LogLine[]> {
    this.require("logs", id);
    return [{ stream: "stdout", time: null, text: "fake log line" }];
  }

  async events(): Promise<AsyncIterable<EngineEvent>> {
    this.check("events");
    return (async function* () {})();
  }

  /** Containers whose name or labels tie them to the instance. */
  containersOf(instanceId: string): ContainerDetails[] {
    return [...this.containers.values()]
      .map(({ details }) => details)
      .filter((details) => details.name === `berth-${instanceId}` || details.labels["dev.berth.instance-id"] === instanceId);
  }

  private check(call: string): void {
    this.calls.push(call);
    if (!this.available) {
      throw new EngineError("unavailable", "container engine is not reachable (ENOENT)");
    }
  }

  private require(call: string, id: string): FakeContainer {
    this.check(call);
    const found = this.find(id);
    if (found === undefined) {
      throw new EngineError("not_found", `no such container: ${id}`, 404);
    }
    return found;
  }

  private find(idOrName: string): FakeContainer | undefined {
    return this.containers.get(idOrName) ?? [...this.containers.values()].find(({ details }) => details.name === idOrName);
  }
}

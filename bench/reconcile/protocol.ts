/** Messages between the benchmark and its simulated agents process. */

/** Instances that each toolbox's agent reports. */
export type Layout = { toolboxId: string; instanceIds: string[] }[];

/** A change made behind the reconciler's back to one instance's container. */
export interface Drift {
  toolboxId: string;
  instanceId: string;
  /** `missing`: removed; `exited`: stopped with exit code 1; `replaced`: recreated with a new container id. */
  kind: "missing" | "exited" | "replaced";
}

export type FromParent = { kind: "layout"; layout: Layout } | { kind: "drift"; drift: Drift[] } | { kind: "exit" };

/** Sent once every agent listens: the loopback port of each toolbox's agent. */
export interface AgentsReady {
  kind: "ready";
  ports: Record<string, number>;
}

export type FromAgents = AgentsReady | { kind: "drifted"; count: number };

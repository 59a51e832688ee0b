import type { ReconcileConfig } from "../../supabase/functions/_shared/reconcile/config.ts";
import type { FetchOnlyFigures, PassFigures } from "./measure.ts";

/** CPU time one Supabase edge function invocation may use, in ms. */
const INVOCATION_CPU_MS = 2_000;
/** Share of that budget a pass plans to use, leaving room for cold start and slower CPUs. */
const CPU_HEADROOM = 0.5;

export interface BenchResult {
  passes: PassFigures[];
  fetchOnly: FetchOnlyFigures;
  config: ReconcileConfig;
  toolboxes: number;
  instances: number;
  repeats: number;
  postgres: string;
  machine: string;
}

export function printFigures(result: BenchResult): void {
  const { config } = result;
  console.log(`Reconciler benchmark: ${result.toolboxes} toolboxes, ${result.instances} instances`);
  console.log(`machine: ${result.machine}`);
  console.log(`database: ${result.postgres}`);
  console.log(`settings: batch ${config.batchSize} toolboxes, ${config.fetchConcurrency} inventory fetches and ${config.repairConcurrency} repairs in flight`);
  console.log("");
  console.log(passTable(result));
  console.log("");
  console.log(`fetch only (median): all ${result.fetchOnly.reachable} inventories with ${config.fetchConcurrency} in flight took ${result.fetchOnly.wallMs.toFixed(0)} ms wall, ${result.fetchOnly.cpuMs.toFixed(0)} ms CPU`);
  console.log(`no drift and fetch only: the median by wall time of ${result.repeats} runs each, taken in turns`);
  console.log("");
  printInvocationSizing(result);
  console.log("");
  printTargets(result);
}

function passTable(result: BenchResult): string {
  const header = ["pass", "wall ms", "CPU ms", "CPU µs/instance", "batches", "statements", "statements/batch", "instance rows", "toolbox rows", "events", "drift", "repairs", "failures", "wall/fetch-only"];
  const rows = result.passes.map((pass) => [
    pass.label,
    pass.wallMs.toFixed(0),
    pass.cpuMs.toFixed(0),
    ((pass.cpuMs * 1000) / Math.max(1, pass.response.instances_checked)).toFixed(1),
    String(pass.response.batches),
    String(pass.statements),
    (pass.statements / Math.max(1, pass.response.batches)).toFixed(1),
    String(pass.instanceRowsWritten),
    String(pass.toolboxRowsWritten),
    String(pass.eventsAppended),
    String(pass.response.drift_found),
    String(pass.response.repairs_made),
    String(pass.response.failures),
    (pass.wallMs / result.fetchOnly.wallMs).toFixed(2),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padStart(widths[column]!)).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

/**
 * Prints how many instances one invocation can take within its CPU budget and how many
 * invocations a fleet of this size needs. The plan uses the first-contact pass, the costliest
 * (cold agent clients, every observation written), since any invocation may start cold.
 */
function printInvocationSizing(result: BenchResult): void {
  const cold = result.passes.find((pass) => pass.label === "first contact")!;
  const steady = result.passes.find((pass) => pass.label === "no drift")!;
  const perInstance = (pass: PassFigures) => pass.cpuMs / Math.max(1, pass.response.instances_checked);
  const maxInstances = (pass: PassFigures) => Math.floor(INVOCATION_CPU_MS / perInstance(pass));
  const plannedInstances = Math.floor(maxInstances(cold) * CPU_HEADROOM);
  const invocations = Math.ceil(result.instances / plannedInstances);

  console.log(`invocation sizing (CPU measured under Node on this machine, an estimate for the Deno edge runtime):`);
  for (const [name, pass] of [["warm, no drift", steady], ["cold, first contact", cold]] as const) {
    console.log(`  ${name}: ${(perInstance(pass) * 1000).toFixed(1)} µs CPU per instance => one invocation with ${INVOCATION_CPU_MS} ms of CPU takes at most ~${maxInstances(pass)} instances`);
  }
  console.log(`  planning for ${CPU_HEADROOM * 100}% of the budget of a cold invocation: BERTH_RECONCILE_MAX_INSTANCES_PER_PASS=${plannedInstances}`);
  if (invocations <= 1) {
    console.log(`  a fleet of ${result.instances} instances fits one invocation per pass`);
  } else {
    console.log(`  a fleet of ${result.instances} instances takes ${invocations} invocations per full round: each claims the least recently reconciled toolboxes,`);
    console.log(`  either one after another on successive cron ticks, or side by side with BERTH_RECONCILE_MAX_CONCURRENT_RUNS=${invocations}`);
  }
}

function printTargets(result: BenchResult): void {
  const steady = result.passes.find((pass) => pass.label === "no drift")!;
  const noDriftStatements = result.passes.filter((pass) => pass.label === "no drift" || pass.label === "after repairs");
  const cpuPerInstanceMs = steady.cpuMs / Math.max(1, steady.response.instances_checked);
  const checks: [string, boolean][] = [
    [`no-drift wall time ${steady.wallMs.toFixed(0)} ms < 5000 ms`, steady.wallMs < 5_000],
    [`CPU per instance ${(cpuPerInstanceMs * 1000).toFixed(1)} µs <= 100 µs`, cpuPerInstanceMs <= 0.1],
    [`no instance row rewritten without drift (${noDriftStatements.map((pass) => pass.instanceRowsWritten).join(", ")})`, noDriftStatements.every((pass) => pass.instanceRowsWritten === 0)],
    [`wall time / fetch only ${(steady.wallMs / result.fetchOnly.wallMs).toFixed(2)} <= 2`, steady.wallMs / result.fetchOnly.wallMs <= 2],
  ];
  console.log("targets:");
  for (const [label, met] of checks) console.log(`  ${met ? "met    " : "MISSED "} ${label}`);
}

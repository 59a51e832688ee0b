// Benchmark of one reconciler pass over a simulated fleet: `npm run bench:reconcile`.
// 1,000 toolboxes with 10 instances each in a real PostgreSQL (DATABASE_URL or embedded), their
// agents simulated on loopback by a child process. It prints wall time, CPU time per instance,
// SQL statements per batch, rows written and the ratio to fetching the inventories alone, for a
// pass with no drift and one with 5% drift. Settings: BENCH_TOOLBOXES, BENCH_INSTANCES_PER_TOOLBOX,
// BENCH_DRIFT_PERCENT and the function's BERTH_RECONCILE_* variables.
import os from "node:os";
import postgres from "postgres";
import { parseReconcileConfig } from "../../supabase/functions/_shared/reconcile/config.ts";
import { createBenchDatabase } from "./database.ts";
import { createFleet, pickDrift } from "./fleet.ts";
import { createCountingSql, createPass, measureFetchOnly, measurePass, type FetchOnlyFigures, type PassFigures } from "./measure.ts";
import { printFigures } from "./report.ts";

const TOOLBOXES = positiveInteger("BENCH_TOOLBOXES", 1_000);
const INSTANCES_PER_TOOLBOX = positiveInteger("BENCH_INSTANCES_PER_TOOLBOX", 10);
const DRIFT_PERCENT = positiveInteger("BENCH_DRIFT_PERCENT", 5);
/** Repetitions of the no-drift pass and of the fetch-only run; the report shows the median. */
const REPEATS = positiveInteger("BENCH_REPEATS", 3);

function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`invalid ${name} ${JSON.stringify(raw)}: expected a whole number of at least 1`);
  return value;
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  // One pass covers the whole fleet here, whatever the per-invocation limit, so the figures
  // describe all of it. The report derives the limit an invocation should use.
  const config = parseReconcileConfig({ BERTH_RECONCILE_MAX_INSTANCES_PER_PASS: "10000000", ...process.env });
  const database = await createBenchDatabase(log);
  const observer = postgres(database.url, { max: 1, onnotice: () => {} });
  const counting = createCountingSql(database.url);
  let fleet: Awaited<ReturnType<typeof createFleet>> | null = null;

  try {
    log(`seeding ${TOOLBOXES} toolboxes with ${INSTANCES_PER_TOOLBOX} instances each`);
    fleet = await createFleet(observer, TOOLBOXES, INSTANCES_PER_TOOLBOX);
    const pass = createPass(counting.sql, config);
    const { passes, fetchOnly } = await runPasses(fleet, counting, observer, pass, config, log);

    printFigures({
      passes,
      fetchOnly,
      config,
      toolboxes: TOOLBOXES,
      instances: TOOLBOXES * INSTANCES_PER_TOOLBOX,
      repeats: REPEATS,
      postgres: `${database.kind === "external" ? "DATABASE_URL" : "embedded"} PostgreSQL ${database.serverVersion}`,
      machine: `${os.cpus().length} cores (${os.cpus()[0]?.model ?? "unknown CPU"}), Node ${process.version}, ${os.platform()} ${os.release()}`,
    });
  } finally {
    fleet?.stop();
    await counting.sql.end({ timeout: 5 });
    await observer.end({ timeout: 5 });
    await database.drop();
  }
}

/**
 * First contact, then the no-drift pass and the fetch-only run in turns (so both see the same
 * load from other processes), then a drifted pass and one that must find nothing again.
 */
async function runPasses(
  fleet: Awaited<ReturnType<typeof createFleet>>,
  counting: ReturnType<typeof createCountingSql>,
  observer: postgres.Sql,
  pass: ReturnType<typeof createPass>,
  config: ReturnType<typeof parseReconcileConfig>,
  log: (line: string) => void,
): Promise<{ passes: PassFigures[]; fetchOnly: FetchOnlyFigures }> {
  log("first contact: records every observation and derives every agent token");
  const first = await measurePass("first contact", counting, observer, pass);

  const steady: PassFigures[] = [];
  const fetches: FetchOnlyFigures[] = [];
  for (let round = 1; round <= REPEATS; round += 1) {
    log(`no drift, round ${round} of ${REPEATS}`);
    steady.push(await measurePass("no drift", counting, observer, pass));
    fetches.push(await measureFetchOnly(observer, config));
  }

  const driftCount = Math.round((TOOLBOXES * INSTANCES_PER_TOOLBOX * DRIFT_PERCENT) / 100);
  log(`${driftCount} instances drifted (exited, missing, replaced)`);
  await fleet.drift(pickDrift(fleet.layout, driftCount));
  const drifted = await measurePass(`${DRIFT_PERCENT}% drift`, counting, observer, pass);
  log("after the repairs");
  const after = await measurePass("after repairs", counting, observer, pass);

  return { passes: [first, median(steady, (figures) => figures.wallMs), drifted, after], fetchOnly: median(fetches, (figures) => figures.wallMs) };
}

function median<T>(values: T[], key: (value: T) => number): T {
  const sorted = [...values].sort((left, right) => key(left) - key(right));
  return sorted[Math.floor(sorted.length / 2)]!;
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

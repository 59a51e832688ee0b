import { ReconcileResponse } from "@berth/shared";

export interface ReconcileLoop {
  stop(): Promise<void>;
}

export interface ReconcileLoopOptions {
  functionsUrl: string;
  serviceRoleKey: string;
  intervalMs: number;
  log: (line: string) => void;
}

/**
 * Calls the reconcile function on an interval with the service role key, the local stand-in
 * for the pg_cron job that does the same on Supabase. Passes never overlap: the next one is
 * scheduled when the previous one has finished.
 */
export function startReconcileLoop(options: ReconcileLoopOptions): ReconcileLoop {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runPass(options).finally(schedule);
    }, options.intervalMs);
  };
  schedule();

  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

async function runPass(options: ReconcileLoopOptions): Promise<void> {
  try {
    const response = await fetch(`${options.functionsUrl}/reconcile`, {
      method: "POST",
      headers: { authorization: `Bearer ${options.serviceRoleKey}`, "content-type": "application/json" },
      body: "{}",
      signal: AbortSignal.timeout(60_000),
    });
    const body: unknown = await response.json().catch(() => null);
    if (!response.ok) {
      options.log(`reconcile pass failed with ${response.status}: ${JSON.stringify(body)}`);
      return;
    }
    logPass(ReconcileResponse.parse(body), options.log);
  } catch (error) {
    options.log(`reconcile pass failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Logs passes that found or failed something; quiet passes would bury the rest of the output. */
function logPass(result: ReconcileResponse, log: (line: string) => void): void {
  if (result.status === "skipped") return;
  if (result.drift_found === 0 && result.failures === 0 && result.instances_marked_unknown === 0) return;

  log(
    `pass ${result.status}: ${result.instances_checked} instances checked, ${result.drift_found} drifted, ` +
      `${result.repairs_made} repaired, ${result.failures} failures, ${result.duration_ms} ms`,
  );
}

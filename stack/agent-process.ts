import { spawn, type ChildProcess } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stopChild } from "./deno.ts";
import { REPO_ROOT } from "./paths.ts";

const AGENT_BIN = path.join(REPO_ROOT, "packages", "dtma", "bin", "berth-dtma.js");

/** Wait before starting the agent again after it exited on its own, like a restart policy. */
const RESTART_DELAY_MS = 1_000;

export interface AgentSupervisor {
  url: string;
  /** Process id of the agent running now, or null between a crash and its restart. */
  pid(): number | null;
  /** Resolves once an agent process other than `previousPid` returns 200 on `/healthz`. */
  waitUntilHealthy(options?: { previousPid?: number | null; timeoutMs?: number }): Promise<number>;
  stop(): Promise<void>;
}

export interface StartAgentOptions {
  port: number;
  env: Record<string, string>;
  log: (line: string) => void;
  /** File that contains the running agent's process id, so other tools can find and signal it. */
  pidFile?: string;
}

/**
 * Runs the agent (`berth-dtma`) as a child process and starts it again whenever it exits
 * without being asked to, the way `--restart unless-stopped` keeps it running on a host.
 * The agent is stateless, so a restart must not change any container.
 */
export async function startAgentSupervisor(options: StartAgentOptions): Promise<AgentSupervisor> {
  const url = `http://127.0.0.1:${options.port}`;
  let child: ChildProcess | null = null;
  let stopping = false;

  const launch = () => {
    const current = spawn(process.execPath, [AGENT_BIN], {
      env: { ...process.env, ...options.env, DTMA_PORT: String(options.port), DTMA_HOST: "127.0.0.1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = current;
    if (options.pidFile && current.pid !== undefined) writeFileSync(options.pidFile, `${current.pid}\n`);
    forwardLines(current, options.log);
    current.once("exit", (code, signal) => {
      if (child === current) child = null;
      if (stopping) return;
      options.log(`agent exited (${signal ?? `code ${code}`}); starting it again in ${RESTART_DELAY_MS} ms`);
      setTimeout(() => {
        if (!stopping) launch();
      }, RESTART_DELAY_MS);
    });
  };

  launch();
  const supervisor: AgentSupervisor = {
    url,
    pid: () => (child as ChildProcess | null)?.pid ?? null,
    waitUntilHealthy: (waitOptions = {}) => waitForHealthyAgent(url, supervisor, waitOptions),
    stop: async () => {
      stopping = true;
      if (child) await stopChild(child);
      if (options.pidFile) rmSync(options.pidFile, { force: true });
    },
  };
  await supervisor.waitUntilHealthy({ timeoutMs: 30_000 });
  return supervisor;
}

async function waitForHealthyAgent(url: string, supervisor: AgentSupervisor, options: { previousPid?: number | null; timeoutMs?: number }): Promise<number> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;

  while (Date.now() < deadline) {
    const pid = supervisor.pid();
    if (pid !== null && pid !== options.previousPid && (await isHealthy(url))) return pid;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`agent at ${url} did not respond on /healthz within ${timeoutMs} ms`);
}

async function isHealthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
    return response.ok;
  } catch {
    return false;
  }
}

function forwardLines(child: ChildProcess, log: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = "";
    stream?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) if (line.trim() !== "") log(line);
    });
  }
}

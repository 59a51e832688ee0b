import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { LABEL_TOOLBOX_ID } from "@berth/shared";
import { loadConfig } from "../../src/config.ts";
import { DockerEngine } from "../../src/engine/docker.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { serveAgent, type RunningAgent } from "../../src/server.ts";
import { captureLogger } from "./capture-logger.ts";

export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const AGENT_BIN = path.join(PACKAGE_DIR, "bin", "berth-dtma.js");
export const TEST_TOKEN = `dtma-test-token-${randomUUID()}`;

export interface AgentResponse {
  status: number;
  body: unknown;
  headers: Headers;
}

/** Calls an agent over HTTP with the test token unless `token` is given (null sends none). */
export async function callAgent(
  baseUrl: string,
  method: string,
  route: string,
  body?: unknown,
  token: string | null = TEST_TOKEN,
): Promise<AgentResponse> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== null) {
    headers.authorization = `Bearer ${token}`;
  }
  const init: RequestInit = { method, headers, signal: AbortSignal.timeout(30_000) };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(`${baseUrl}${route}`, init);
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : (JSON.parse(text) as unknown), headers: response.headers };
}

export interface InProcessAgent {
  url: string;
  toolboxId: string;
  logLines: () => string[];
  close(): Promise<boolean>;
}

/**
 * Runs the agent inside the test process on a free loopback port, with its log kept in memory.
 * `wrapEngine` lets a test put itself between the agent and the engine.
 */
export async function startInProcessAgent(
  env: Record<string, string>,
  options: { wrapEngine?: (engine: Engine) => Engine } = {},
): Promise<InProcessAgent> {
  const config = loadConfig({ DTMA_TOKEN: TEST_TOKEN, DTMA_PORT: "0", DTMA_STOP_TIMEOUT_SECONDS: "5", ...env });
  const { logger, lines } = captureLogger();
  const dockerEngine = new DockerEngine(config.docker, config.engineTimeoutMs);
  const engine = options.wrapEngine?.(dockerEngine) ?? dockerEngine;
  const agent: RunningAgent = await serveAgent(config, engine, logger);
  return {
    url: `http://127.0.0.1:${agent.port}`,
    toolboxId: config.toolboxId ?? "",
    logLines: lines,
    close: () => agent.close(),
  };
}

export interface AgentProcess {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code, or the signal name when a signal ended the process. */
  exited: Promise<number | string>;
}

/**
 * Spawns the agent as its own process through the `berth-dtma` bin, with `DTMA_PORT=0`, and
 * waits until its log reports the port it listens on.
 */
export async function spawnAgent(env: Record<string, string>, options: { command?: string[] } = {}): Promise<AgentProcess> {
  const [command, ...args] = options.command ?? [process.execPath, AGENT_BIN];
  const child = spawn(command!, args, {
    env: { PATH: process.env.PATH ?? "", DTMA_TOKEN: TEST_TOKEN, DTMA_PORT: "0", DTMA_STOP_TIMEOUT_SECONDS: "5", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so a test can stop npx together with the node process it starts.
    detached: true,
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
  });

  const port = await waitForListening(() => stdout, exited, () => stderr);
  return { child, url: `http://127.0.0.1:${port}`, stdout: () => stdout, stderr: () => stderr, exited };
}

async function waitForListening(stdout: () => string, exited: Promise<unknown>, stderr: () => string): Promise<number> {
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  const deadline = Date.now() + 30_000;

  while (Date.now() < deadline && !exitedEarly) {
    for (const line of stdout().split("\n")) {
      if (line.includes('"agent listening"')) {
        return (JSON.parse(line) as { port: number }).port;
      }
    }
    await sleep(50);
  }
  throw new Error(`agent did not report "agent listening" (exited: ${exitedEarly}); stdout:\n${stdout()}\nstderr:\n${stderr()}`);
}

/** Sends a signal to the agent's process group and waits for the process to exit. */
export async function stopAgent(agent: AgentProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<number | string> {
  if (agent.child.exitCode === null && agent.child.signalCode === null && agent.child.pid !== undefined) {
    try {
      process.kill(-agent.child.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") {
        throw error;
      }
    }
  }
  return agent.exited;
}

/** Returns the label selector of the containers that agents created for one toolbox id. */
export function toolboxSelector(toolboxId: string): string {
  return `${LABEL_TOOLBOX_ID}=${toolboxId}`;
}

/** Polls `check` until it returns a value other than undefined, or fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) {
        return value;
      }
    } catch (error) {
      lastError = error;
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}`);
}

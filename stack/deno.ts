import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { REPO_ROOT, npmBin } from "./paths.ts";

/** Makes `Deno.serve(handler)` listen on 127.0.0.1:$PORT, as the edge runtime picks the port there. */
const SERVE_SHIM = path.join(REPO_ROOT, "stack", "deno", "serve-shim.ts");

export interface DenoServer {
  url: string;
  port: number;
  /** Everything the process printed so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartDenoServerOptions {
  /** The module that calls `Deno.serve`; it is served on 127.0.0.1 at `port` whatever it asks for. */
  entry: string;
  /** The `deno.json` with the import map for the module. */
  config: string;
  port: number;
  env?: Record<string, string>;
  /** How long to wait for the port to answer, in milliseconds. */
  readyTimeoutMs?: number;
  onOutput?: (line: string) => void;
}

/**
 * Serves an edge function module with the real Deno binary from npm and waits until it answers
 * HTTP. Permissions are limited to network, environment and reading files, as on Supabase.
 */
export async function startDenoServer(options: StartDenoServerOptions): Promise<DenoServer> {
  const args = ["run", "--no-prompt", "--allow-net", "--allow-env", "--allow-read", "--config", options.config, SERVE_SHIM, options.entry];
  const child = spawn(npmBin("deno"), args, {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", NO_COLOR: "1", ...denoDirEnv(), ...options.env, PORT: String(options.port) },
    stdio: ["ignore", "pipe", "pipe"],
  });

  let output = "";
  const collect = (chunk: Buffer) => {
    const text = chunk.toString("utf8");
    output += text;
    for (const line of text.split("\n")) if (line) options.onOutput?.(line);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  const url = `http://127.0.0.1:${options.port}`;
  await waitUntilServing(child, url, options.readyTimeoutMs ?? 30_000, () => output);
  return { url, port: options.port, output: () => output, stop: () => stopChild(child) };
}

function denoDirEnv(): Record<string, string> {
  return process.env.DENO_DIR ? { DENO_DIR: process.env.DENO_DIR } : {};
}

async function waitUntilServing(child: ChildProcess, url: string, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`deno exited with code ${child.exitCode} before serving ${url}:\n${output()}`);
    }
    try {
      await fetch(url, { signal: AbortSignal.timeout(1_000) });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await stopChild(child);
  throw new Error(`deno did not answer on ${url} within ${timeoutMs} ms:\n${output()}`);
}

/** Sends SIGTERM and waits for the exit, escalating to SIGKILL after five seconds. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;

  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

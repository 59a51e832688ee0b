import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
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
  /** The module that calls `Deno.serve`; it is served on 127.0.0.1 at `port`, whatever port it requests. */
  entry: string;
  /** The `deno.json` with the import map for the module. */
  config: string;
  port: number;
  env?: Record<string, string>;
  /** How long to wait for the port to accept connections, in milliseconds. */
  readyTimeoutMs?: number;
  onOutput?: (line: string) => void;
}

/**
 * Serves an edge function module with the real Deno binary from npm and waits until it accepts
 * connections. Permissions are limited to network, environment and reading files, as on Supabase.
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

/**
 * Waits until the port accepts TCP connections. A TCP probe rather than an HTTP request, so
 * the function does not log probe requests as unauthorized calls.
 */
async function waitUntilServing(child: ChildProcess, url: string, timeoutMs: number, output: () => string): Promise<void> {
  const { hostname, port } = new URL(url);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`deno exited with code ${child.exitCode} before serving ${url}:\n${output()}`);
    }
    if (await acceptsConnections(hostname, Number(port))) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stopChild(child);
  throw new Error(`deno did not listen on ${url} within ${timeoutMs} ms:\n${output()}`);
}

function acceptsConnections(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(1_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
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

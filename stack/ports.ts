import { execFileSync } from "node:child_process";
import net from "node:net";

/** Describes the process listening on a TCP port, as `ss` reports it, or undefined if unknown. */
export function describePortHolder(port: number): string | undefined {
  try {
    const line = execFileSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const match = /users:\(\("([^"]+)",pid=(\d+)/.exec(line);
    return match ? `${match[1]} (pid ${match[2]})` : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves when the port can be bound on the host; rejects with a message naming the holder. */
export async function assertPortFree(port: number, host = "127.0.0.1", purpose = "this service"): Promise<void> {
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
  } catch (error) {
    const holder = describePortHolder(port) ?? "another process";
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      `cannot use ${host}:${port} for ${purpose}: ${code === "EADDRINUSE" ? `it is already held by ${holder}` : String(error)}. ` +
        "Stop that process (is `npm start` already running in another terminal?) and try again.",
    );
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

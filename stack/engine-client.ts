import Docker from "dockerode";

/** Timeout of a `/_ping` request, after which the engine counts as unavailable. */
const PING_TIMEOUT_MS = 2_000;

/**
 * Creates a dockerode client for an address in `DOCKER_HOST` form: `unix:///path/to.sock`,
 * `tcp://host:port`, `http://host:port` or `https://host:port`.
 * NOTE: TLS client certificates (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) are not passed on.
 */
export function createDockerClient(dockerHost: string, options: { timeoutMs?: number } = {}): Docker {
  const timeout = options.timeoutMs;

  if (dockerHost.startsWith("unix://")) {
    return new Docker({ socketPath: dockerHost.slice("unix://".length), timeout });
  }

  const url = parseTcpHost(dockerHost);
  const protocol = url.protocol === "https:" ? "https" : "http";
  const defaultPort = protocol === "https" ? 2376 : 2375;
  const port = url.port === "" ? defaultPort : Number(url.port);
  return new Docker({ protocol, host: url.hostname, port, timeout });
}

function parseTcpHost(dockerHost: string): URL {
  const match = /^(tcp|http|https):\/\//.exec(dockerHost);
  if (match === null) {
    throw new Error(`unsupported Docker host ${dockerHost}: expected unix:///path/to.sock or tcp://host:port`);
  }

  const scheme = match[1] === "tcp" ? "http" : match[1];
  return new URL(`${scheme}://${dockerHost.slice(match[0].length)}`);
}

/** Sends `GET /_ping` and returns null when it succeeds, or the error message when it fails. */
export async function pingEngine(dockerHost: string): Promise<string | null> {
  try {
    await createDockerClient(dockerHost, { timeoutMs: PING_TIMEOUT_MS }).ping();
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** Tells Podman's Docker-compatible service from Docker Engine by the components in `/version`. */
export async function detectEngineKind(dockerHost: string): Promise<"docker" | "podman"> {
  const version = await createDockerClient(dockerHost, { timeoutMs: PING_TIMEOUT_MS }).version();
  const components = version.Components ?? [];
  return components.some((component) => component.Name === "Podman Engine") ? "podman" : "docker";
}

import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { Logger } from "pino";
import type { Config } from "./config.ts";
import type { Engine } from "./engine/engine.ts";
import { watchEvents, type EventWatcher } from "./events.ts";
import { HeartbeatSender } from "./heartbeat.ts";
import { createApp } from "./http/app.ts";
import { InstanceService } from "./instances.ts";
import { scopeLabels } from "./lookup.ts";
import { AGENT_VERSION } from "./version.ts";

export interface RunningAgent {
  /** The port the agent listens on, useful when `DTMA_PORT` is 0. */
  port: number;
  /**
   * Stops accepting connections, waits up to `shutdownTimeoutMs` for requests in flight and
   * stops heartbeats. Resolves true when every request finished in time. Containers keep running.
   */
  close(): Promise<boolean>;
}

/** Serves the agent's HTTP API and, when a control plane is configured, sends heartbeats. */
export async function serveAgent(config: Config, engine: Engine, logger: Logger): Promise<RunningAgent> {
  const app = createApp({ engine, config, logger });
  const server = await listen(app.fetch, config, logger);
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: config.host, port, agent_version: AGENT_VERSION, toolbox_id: config.toolboxId }, "agent listening");

  void reportEngine(engine, config, logger);
  const background = startHeartbeats(config, engine, logger);

  return {
    port,
    close: async () => {
      const finished = await closeServer(server, config.shutdownTimeoutMs);
      await background?.stop();
      return finished;
    },
  };
}

function listen(fetchHandler: Parameters<typeof serve>[0]["fetch"], config: Config, logger: Logger): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: fetchHandler, port: config.port, hostname: config.host }, () => resolve(server as Server));
    server.once("error", (error) => {
      logger.error({ err: error, host: config.host, port: config.port }, "agent could not listen");
      reject(error);
    });
  });
}

/** Logs at start whether the engine responds. The agent serves either way and returns 503 until it does. */
async function reportEngine(engine: Engine, config: Config, logger: Logger): Promise<void> {
  try {
    const version = await engine.version();
    logger.info({ docker_host: config.dockerHost, engine_version: version }, "container engine reachable");
  } catch (error) {
    logger.warn({ err: error, docker_host: config.dockerHost }, "container engine not reachable at start");
  }
}

function startHeartbeats(config: Config, engine: Engine, logger: Logger): { stop(): Promise<void> } | null {
  if (config.controlPlaneUrl === null || config.toolboxId === null) {
    logger.info("DTMA_CONTROL_PLANE_URL is not set, so no heartbeats are sent");
    return null;
  }

  const service = new InstanceService({ engine, toolboxId: config.toolboxId, publishIp: config.publishIp, stopTimeoutSeconds: config.stopTimeoutSeconds });
  const heartbeatLogger = logger.child({ component: "heartbeat", toolbox_id: config.toolboxId });
  const sender = new HeartbeatSender({
    controlPlaneUrl: config.controlPlaneUrl,
    token: config.token,
    toolboxId: config.toolboxId,
    intervalMs: config.heartbeatIntervalMs,
    debounceMs: config.heartbeatDebounceMs,
    backoffMinMs: config.heartbeatBackoffMinMs,
    backoffMaxMs: config.heartbeatBackoffMaxMs,
    timeoutMs: config.heartbeatTimeoutMs,
    collect: async () => {
      const [engineVersion, instances] = await Promise.all([engine.version(), service.observeAll()]);
      return { engineVersion, instances };
    },
    logger: heartbeatLogger,
  });
  const watcher: EventWatcher = watchEvents({
    engine,
    labels: scopeLabels(config.toolboxId),
    logger: heartbeatLogger,
    onEvent: (event) => sender.notify(event),
    onReconnect: () => sender.notify(null),
  });

  sender.start();
  heartbeatLogger.info({ control_plane_url: config.controlPlaneUrl }, "sending heartbeats");
  return {
    stop: async () => {
      await watcher.stop();
      await sender.stop();
    },
  };
}

/** Closes the listener, then closes each keep-alive connection once its request finished, for up to `timeoutMs`. */
function closeServer(server: Server, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    // A connection that is busy at close time turns idle once its response is sent. The sweep
    // closes it then, so shutdown does not wait for the client's keep-alive timeout.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    const timer = setTimeout(() => {
      clearInterval(sweep);
      server.closeAllConnections();
      resolve(false);
    }, timeoutMs);
    server.close(() => {
      clearInterval(sweep);
      clearTimeout(timer);
      resolve(true);
    });
    server.closeIdleConnections();
  });
}

import { ConfigError, loadConfig, type Config } from "./config.ts";
import { DockerEngine } from "./engine/docker.ts";
import { createLogger } from "./logger.ts";
import { serveAgent } from "./server.ts";

/**
 * Entry point of `berth-dtma`: reads the settings, serves until SIGTERM or SIGINT, then
 * finishes requests in flight and exits 0. Managed containers are left running.
 */
async function main(): Promise<void> {
  const config = readConfig();
  const logger = createLogger(config.logLevel);
  const engine = new DockerEngine(config.docker, config.engineTimeoutMs);

  let agent;
  try {
    agent = await serveAgent(config, engine, logger);
  } catch (error) {
    logger.fatal({ err: error }, "agent failed to start");
    process.exit(1);
  }

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal during shutdown, exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "shutting down: no new requests, finishing requests in flight");
    const finished = await agent.close();
    logger.info({ finished_in_time: finished }, "agent stopped; managed containers keep running");
    process.exit(finished ? 0 : 1);
  };
  process.on("SIGTERM", (signal) => void shutdown(signal));
  process.on("SIGINT", (signal) => void shutdown(signal));
}

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`berth-dtma: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

await main();

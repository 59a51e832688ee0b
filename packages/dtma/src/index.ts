export { createApp, type AppConfig, type AppDependencies } from "./http/app.ts";
export { loadConfig, ConfigError, parseDockerHost, DEFAULT_DOCKER_HOST, type Config, type DockerEndpoint } from "./config.ts";
export { DockerEngine } from "./engine/docker.ts";
export {
  EngineError,
  type ContainerDetails,
  type ContainerSpec,
  type ContainerSummary,
  type Engine,
  type EngineErrorKind,
  type EngineEvent,
} from "./engine/engine.ts";
export { InstanceService } from "./instances.ts";
export { HeartbeatSender, type HeartbeatOptions } from "./heartbeat.ts";
export { createLogger } from "./logger.ts";
export { serveAgent, type RunningAgent } from "./server.ts";
export { AGENT_VERSION } from "./version.ts";

import type { ErrorCode } from "@berth/shared";
import { EngineError } from "./engine/engine.ts";

/** An error the agent reports to its caller with a stable code from the shared error table. */
export class AgentError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "AgentError";
  }
}

/**
 * Maps an engine failure to the code the caller branches on. Failures without a stable code
 * become `internal_error`, and the engine's message goes to the log, not to the caller.
 */
export function agentErrorFromEngine(error: EngineError): AgentError {
  switch (error.kind) {
    case "unavailable":
      return new AgentError("engine_unavailable", "The container engine is not reachable; check DOCKER_HOST and that the engine runs.");
    case "not_found":
      return new AgentError("instance_not_found", "The instance's container was removed while the request ran.");
    case "image_not_found":
      return new AgentError("image_not_found", "The image is not present on this host.");
    case "name_conflict":
      return new AgentError("conflict", "Another container already uses the instance's container name.");
    case "port_in_use":
      return new AgentError("port_in_use", "The host port is already in use on this host.");
    case "failed":
      return new AgentError("internal_error", "The container engine rejected the request; see the agent log.", {
        engine_status: error.statusCode,
      });
  }
}

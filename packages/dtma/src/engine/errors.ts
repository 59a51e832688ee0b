import { EngineError } from "./engine.ts";

// Socket errors that mean the engine is not running or stopped responding, as opposed to an
// engine that returned an error.
const UNAVAILABLE_CODES = new Set([
  "ENOENT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "EACCES",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

interface ModemError {
  code?: string;
  statusCode?: number;
  reason?: string;
  message?: string;
  json?: { message?: string; cause?: string } | null;
}

/**
 * Maps a dockerode error to an `EngineError`. Docker and Podman word some failures differently,
 * and Podman 4 returns 500 instead of 409 for a name conflict, so the message decides too.
 */
export function classifyEngineError(error: unknown): EngineError {
  if (error instanceof EngineError) {
    return error;
  }
  const modemError = (error ?? {}) as ModemError;
  const status = typeof modemError.statusCode === "number" ? modemError.statusCode : null;
  const message = engineMessage(modemError);

  if (status === null && modemError.code !== undefined && UNAVAILABLE_CODES.has(modemError.code)) {
    return new EngineError("unavailable", `container engine is not reachable (${modemError.code})`, null, { cause: error });
  }
  if (status === null && /socket hang up|timeout/i.test(message)) {
    return new EngineError("unavailable", `container engine did not respond: ${message}`, null, { cause: error });
  }
  return new EngineError(kindFor(status, message), message, status, { cause: error });
}

function kindFor(status: number | null, message: string): EngineError["kind"] {
  if (/address already in use|port is already allocated|bind: .*in use/i.test(message)) {
    return "port_in_use";
  }
  if (/no such image|image not known|pull access denied|manifest unknown/i.test(message)) {
    return "image_not_found";
  }
  if (status === 409 && /name/i.test(message)) {
    return "name_conflict";
  }
  if (/name .*is already in use|name is already in use/i.test(message)) {
    return "name_conflict";
  }
  if (status === 404) {
    return "not_found";
  }
  return "failed";
}

function engineMessage(error: ModemError): string {
  return error.json?.message ?? error.json?.cause ?? error.reason ?? error.message ?? "unknown engine error";
}

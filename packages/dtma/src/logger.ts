import pino, { type DestinationStream, type Logger } from "pino";

// Paths that may carry a secret if a future log call passes a request body or headers along.
// Nothing logs them today, and the redaction keeps it that way.
const REDACTED_PATHS = [
  "token",
  "authorization",
  "env",
  "*.env",
  "*.token",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
];

/**
 * Creates the agent's JSON logger, one object per line on stdout unless `destination` is given.
 * Writes to stdout are synchronous, so the lines logged right before `process.exit` are kept.
 */
export function createLogger(level: string, destination: DestinationStream = pino.destination({ dest: 1, sync: true })): Logger {
  return pino(
    {
      level,
      base: { service: "berth-dtma", pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    },
    destination,
  );
}

import { Writable } from "node:stream";
import type { Logger } from "pino";
import { createLogger } from "../../src/logger.ts";

/** Creates a logger that keeps its JSON lines in memory, so tests can read what the agent logged. */
export function captureLogger(): { logger: Logger; lines: () => string[] } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString("utf8"));
      callback();
    },
  });
  const logger = createLogger("debug", sink);
  return { logger, lines: () => chunks.join("").split("\n").filter((line) => line !== "") };
}

import { StringDecoder } from "node:string_decoder";
import type { LogLine, LogStream } from "@berth/shared";

const HEADER_BYTES = 8;
const STREAM_BY_TYPE: Record<number, LogStream> = { 1: "stdout", 2: "stderr" };

/**
 * Splits the engine's multiplexed log body into lines. Each frame is an 8-byte header (stream
 * type in byte 0, big-endian payload length in bytes 4-7) followed by the payload. A frame may
 * end inside a line or a UTF-8 character, so both are carried per stream to the next frame.
 */
export function demultiplexLogs(buffer: Buffer): LogLine[] {
  const lines: LogLine[] = [];
  const partial: Record<LogStream, string> = { stdout: "", stderr: "" };
  const decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
  let offset = 0;

  while (offset + HEADER_BYTES <= buffer.length) {
    const stream = STREAM_BY_TYPE[buffer[offset]!] ?? "stdout";
    const length = buffer.readUInt32BE(offset + 4);
    const payload = decoders[stream].write(buffer.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length));
    offset += HEADER_BYTES + length;

    const pieces = (partial[stream] + payload).split("\n");
    partial[stream] = pieces.pop() ?? "";
    for (const piece of pieces) {
      lines.push(parseLine(stream, piece));
    }
  }

  for (const stream of ["stdout", "stderr"] as const) {
    const rest = partial[stream] + decoders[stream].end();
    if (rest !== "") {
      lines.push(parseLine(stream, rest));
    }
  }
  return lines;
}

/** Splits the log body of a container with a TTY, which has no frames and one stream. */
export function splitRawLogs(buffer: Buffer): LogLine[] {
  const text = buffer.toString("utf8").replace(/\n$/, "");
  if (text === "") {
    return [];
  }
  return text.split("\n").map((line) => parseLine("stdout", line));
}

// Lines were requested with timestamps, which the engine puts in front of each line as
// RFC 3339 with nanoseconds followed by one space.
const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) /;

function parseLine(stream: LogStream, raw: string): LogLine {
  const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
  const match = TIMESTAMP.exec(line);
  if (match === null) {
    return { stream, time: null, text: line };
  }
  return { stream, time: toIsoMillis(match[1]!), text: line.slice(match[0].length) };
}

function toIsoMillis(timestamp: string): string | null {
  const date = new Date(timestamp.replace(/(\.\d{3})\d+/, "$1"));
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

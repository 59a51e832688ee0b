import { describe, expect, it } from "vitest";
import { demultiplexLogs, splitRawLogs } from "../../src/engine/logs.ts";

function frame(stream: 1 | 2, text: string | Buffer): Buffer {
  const payload = typeof text === "string" ? Buffer.from(text, "utf8") : text;
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

describe("demultiplexLogs", () => {
  it("splits streams in order", () => {
    const body = Buffer.concat([frame(1, "out one\n"), frame(2, "err one\n"), frame(1, "out two\n")]);

    expect(demultiplexLogs(body)).toEqual([
      { stream: "stdout", time: null, text: "out one" },
      { stream: "stderr", time: null, text: "err one" },
      { stream: "stdout", time: null, text: "out two" },
    ]);
  });

  it("joins a line split across frames", () => {
    const body = Buffer.concat([frame(1, "first ha"), frame(2, "err\n"), frame(1, "lf\nsecond\n")]);

    expect(demultiplexLogs(body).map((line) => `${line.stream}:${line.text}`)).toEqual([
      "stderr:err",
      "stdout:first half",
      "stdout:second",
    ]);
  });

  it("joins a UTF-8 character split across frames", () => {
    const bytes = Buffer.from("grüße\n", "utf8");
    const body = Buffer.concat([frame(1, bytes.subarray(0, 3)), frame(1, bytes.subarray(3))]);

    expect(demultiplexLogs(body)).toEqual([{ stream: "stdout", time: null, text: "grüße" }]);
  });

  it("keeps a last line without newline", () => {
    expect(demultiplexLogs(frame(2, "no newline"))).toEqual([{ stream: "stderr", time: null, text: "no newline" }]);
  });

  it("parses engine timestamps", () => {
    const body = Buffer.concat([
      frame(1, "2026-12-04T19:59:28.449985882Z hello world\n"),
      frame(1, "2026-12-04T20:08:58Z second\n"),
      frame(1, "2026-12-04T20:08:58+02:00 offset\n"),
    ]);

    expect(demultiplexLogs(body)).toEqual([
      { stream: "stdout", time: "2026-12-04T19:59:28.449Z", text: "hello world" },
      { stream: "stdout", time: "2026-12-04T20:08:58.000Z", text: "second" },
      { stream: "stdout", time: "2026-12-04T18:08:58.000Z", text: "offset" },
    ]);
  });

  it("ignores a truncated header", () => {
    const body = Buffer.concat([frame(1, "whole\n"), Buffer.from([1, 0, 0])]);

    expect(demultiplexLogs(body)).toEqual([{ stream: "stdout", time: null, text: "whole" }]);
  });

  it("returns nothing for an empty body", () => {
    expect(demultiplexLogs(Buffer.alloc(0))).toEqual([]);
  });
});

describe("splitRawLogs", () => {
  it("reads TTY output as stdout", () => {
    expect(splitRawLogs(Buffer.from("2026-12-04T20:08:58Z a\r\nb\n"))).toEqual([
      { stream: "stdout", time: "2026-12-04T20:08:58.000Z", text: "a" },
      { stream: "stdout", time: null, text: "b" },
    ]);
  });

  it("returns nothing for empty output", () => {
    expect(splitRawLogs(Buffer.alloc(0))).toEqual([]);
  });
});

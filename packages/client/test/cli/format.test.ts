import { describe, expect, test } from "vitest";
import { compactDuration, formatJson, formatTable, relativeTime, shortId } from "../../src/cli/format.ts";

const NOW = new Date("2026-01-05T12:00:00Z");

describe("formatTable", () => {
  test("pads columns to widest cell", () => {
    const table = formatTable(["ID", "NAME", "STATUS"], [
      ["3f2a9c1e", "search", "running"],
      ["7d", "a-much-longer-name", "failed (CrashLoop)"],
    ]);

    expect(table).toBe(
      [
        "ID        NAME                STATUS",
        "3f2a9c1e  search              running",
        "7d        a-much-longer-name  failed (CrashLoop)",
        "",
      ].join("\n"),
    );
  });

  test("leaves no trailing spaces", () => {
    const table = formatTable(["A", "B"], [["x", ""]]);

    for (const line of table.split("\n")) expect(line).toBe(line.trimEnd());
  });

  test("counts arrows as one column", () => {
    const table = formatTable(["STATUS", "ACTOR"], [["pending → running", "user"]]);

    expect(table.split("\n")[1]).toBe("pending → running  user");
  });

  test("prints header without rows", () => {
    expect(formatTable(["ID", "NAME"], [])).toBe("ID  NAME\n");
  });
});

describe("relativeTime", () => {
  test.each([
    ["2026-01-05T12:00:00Z", "just now"],
    ["2026-01-05T11:59:56Z", "just now"],
    ["2026-01-05T11:59:15Z", "45s ago"],
    ["2026-01-05T11:57:00Z", "3m ago"],
    ["2026-01-05T11:00:01Z", "59m ago"],
    ["2026-01-05T10:00:00Z", "2h ago"],
    ["2026-01-01T12:00:00Z", "4d ago"],
    ["2026-01-05T12:03:00Z", "in 3m"],
    ["2026-01-05T11:56:59.123456+00:00", "3m ago"],
  ])("%s is %s", (timestamp, expected) => {
    expect(relativeTime(timestamp, NOW)).toBe(expected);
  });

  test("null is never", () => {
    expect(relativeTime(null, NOW)).toBe("never");
  });

  test("unparsable timestamp is shown as is", () => {
    expect(relativeTime("yesterday", NOW)).toBe("yesterday");
  });
});

describe("compactDuration", () => {
  test.each([
    [0, "0s"],
    [59, "59s"],
    [60, "1m"],
    [3599, "59m"],
    [3600, "1h"],
    [86_399, "23h"],
    [86_400, "1d"],
  ])("%i seconds is %s", (seconds, expected) => {
    expect(compactDuration(seconds)).toBe(expected);
  });
});

describe("shortId and formatJson", () => {
  test("shortId keeps eight characters", () => {
    expect(shortId("3f2a9c1e-1111-4222-8333-444455556666")).toBe("3f2a9c1e");
  });

  test("formatJson indents and ends with newline", () => {
    expect(formatJson({ a: [1] })).toBe('{\n  "a": [\n    1\n  ]\n}\n');
  });
});

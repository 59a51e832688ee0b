import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";
import { npmBin, REPO_ROOT } from "../../../stack/paths.ts";
import { createTestDatabase, dropTestDatabase, useTestDatabase } from "../../../tests/support/db.ts";
import { generateDatabaseTypes } from "../typegen/index.ts";

const execFileAsync = promisify(execFile);
const CLIENT_DIR = path.join(REPO_ROOT, "packages", "client");
const TYPES_FILE = path.join(CLIENT_DIR, "src", "database.types.ts");

describe("database.types.ts", () => {
  const db = useTestDatabase();

  test("matches the migrated schema", async () => {
    const generated = await generateDatabaseTypes(db().url);
    const committed = await readFile(TYPES_FILE, "utf8");

    expect(committed, "packages/client/src/database.types.ts is out of date: run `npm run gen:types` and commit it").toBe(generated);
  });

  // The client's select lists and filters are typed by supabase-js against these types, so a
  // migration that renames a column the client reads must fail the type check.
  test("renamed column fails tsc", { timeout: 180_000 }, async () => {
    const renamed = await createTestDatabase();
    const workdir = await mkdtemp(path.join(os.tmpdir(), "berth-client-rename-"));
    try {
      await renamed.sql`alter table public.tool_instances rename column status_reason_code to status_reason_kind`;
      await copyClient(workdir);
      await writeFile(path.join(workdir, "src", "database.types.ts"), await generateDatabaseTypes(renamed.url));

      const result = await typeCheck(workdir);

      expect(result.exitCode).not.toBe(0);
      expect(result.output).toContain("column 'status_reason_code' does not exist on 'tool_instances'");
    } finally {
      await rm(workdir, { recursive: true, force: true });
      await dropTestDatabase(renamed);
    }
  });

  test("unchanged copy passes tsc", { timeout: 180_000 }, async () => {
    const workdir = await mkdtemp(path.join(os.tmpdir(), "berth-client-copy-"));
    try {
      await copyClient(workdir);
      await writeFile(path.join(workdir, "src", "database.types.ts"), await generateDatabaseTypes(db().url));

      const result = await typeCheck(workdir);

      expect(result.output).toBe("");
      expect(result.exitCode).toBe(0);
    } finally {
      await rm(workdir, { recursive: true, force: true });
    }
  });
});

/**
 * Copies the client's sources and package.json into `workdir` with a tsconfig of the same
 * settings. node_modules is linked from the repository so `@berth/shared` and supabase-js resolve.
 */
async function copyClient(workdir: string): Promise<void> {
  await cp(path.join(CLIENT_DIR, "src"), path.join(workdir, "src"), { recursive: true });
  await cp(path.join(CLIENT_DIR, "package.json"), path.join(workdir, "package.json"));
  await symlink(path.join(REPO_ROOT, "node_modules"), path.join(workdir, "node_modules"), "dir");
  const tsconfig = { extends: path.join(REPO_ROOT, "tsconfig.base.json"), include: ["src"] };
  await writeFile(path.join(workdir, "tsconfig.json"), JSON.stringify(tsconfig));
}

async function typeCheck(workdir: string): Promise<{ exitCode: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(npmBin("tsc"), ["-p", workdir, "--noEmit", "--pretty", "false"], { cwd: workdir });
    return { exitCode: 0, output: `${stdout}${stderr}` };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { exitCode: failure.code ?? 1, output: `${failure.stdout ?? ""}${failure.stderr ?? ""}` };
  }
}

import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { loadSettings, parseEnvFile, requireServiceRoleKey, requireUserCredentials } from "../../src/cli/config.ts";
import { UsageError } from "../../src/cli/exit.ts";

const DEV_ENV = [
  "# Written by npm start; rewritten on every start.",
  "SUPABASE_URL=http://127.0.0.1:54321",
  "SUPABASE_ANON_KEY=anon-from-file",
  "SUPABASE_SERVICE_ROLE_KEY=service-from-file",
  "BERTH_DEV_USER_JWT=user-from-file",
  "BERTH_LOCAL_TOOLBOX_ID=",
].join("\n");

describe("parseEnvFile", () => {
  test("reads pairs, comments and quotes", () => {
    const values = parseEnvFile(['# comment', "A=1", 'B="two words"', "C='x=y'", "export D=4", "", "not a pair", "E="].join("\n"));

    expect(values).toEqual({ A: "1", B: "two words", C: "x=y", D: "4", E: "" });
  });
});

describe("loadSettings", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "berth-cli-config-"));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("reads .berth/dev.env in cwd", async () => {
    await mkdir(path.join(dir, ".berth"));
    await writeFile(path.join(dir, ".berth", "dev.env"), DEV_ENV);

    const settings = loadSettings({}, dir);

    expect(settings.url).toBe("http://127.0.0.1:54321");
    expect(settings.anonKey).toBe("anon-from-file");
    expect(settings.userToken).toBe("user-from-file");
    expect(settings.serviceRoleKey).toBe("service-from-file");
    expect(settings.localToolboxId).toBeUndefined();
    expect(settings.source).toBe(path.join(dir, ".berth", "dev.env"));
  });

  test("environment URL replaces the file", async () => {
    await mkdir(path.join(dir, ".berth"));
    await writeFile(path.join(dir, ".berth", "dev.env"), DEV_ENV);

    const settings = loadSettings({ SUPABASE_URL: "https://project.supabase.co", SUPABASE_ANON_KEY: "anon-env", BERTH_USER_JWT: "user-env" }, dir);

    expect(settings.url).toBe("https://project.supabase.co");
    expect(settings.anonKey).toBe("anon-env");
    expect(settings.userToken).toBe("user-env");
    // Nothing is taken from the file once SUPABASE_URL comes from the environment.
    expect(settings.serviceRoleKey).toBeUndefined();
    expect(settings.source).toBe("the environment");
  });

  test("environment dev token is accepted", () => {
    const settings = loadSettings({ SUPABASE_URL: "http://127.0.0.1:54321", SUPABASE_ANON_KEY: "anon-env", BERTH_DEV_USER_JWT: "dev-env" }, dir);

    expect(settings.userToken).toBe("dev-env");
    expect(settings.userTokenName).toBe("BERTH_DEV_USER_JWT");
  });

  test("user token wins over dev token", () => {
    const settings = loadSettings({ SUPABASE_URL: "http://127.0.0.1:54321", BERTH_USER_JWT: "user-env", BERTH_DEV_USER_JWT: "dev-env" }, dir);

    expect(settings.userToken).toBe("user-env");
    expect(settings.userTokenName).toBe("BERTH_USER_JWT");
  });

  test("empty user token falls back", () => {
    const settings = loadSettings({ SUPABASE_URL: "http://127.0.0.1:54321", BERTH_USER_JWT: "", BERTH_DEV_USER_JWT: "dev-env" }, dir);

    expect(settings.userToken).toBe("dev-env");
  });

  test("environment toolbox id is read", () => {
    const settings = loadSettings({ SUPABASE_URL: "http://127.0.0.1:54321", BERTH_LOCAL_TOOLBOX_ID: "7c1d3f4e-55aa-4b6c-9d2e-0f1a2b3c4d5e" }, dir);

    expect(settings.localToolboxId).toBe("7c1d3f4e-55aa-4b6c-9d2e-0f1a2b3c4d5e");
  });

  test("config flag wins over environment", async () => {
    const file = path.join(dir, "other.env");
    await writeFile(file, DEV_ENV.replace("54321", "60000"));

    const settings = loadSettings({ SUPABASE_URL: "https://project.supabase.co" }, dir, "other.env");

    expect(settings.url).toBe("http://127.0.0.1:60000");
  });

  test("missing config file is a usage error", () => {
    expect(() => loadSettings({}, dir, "missing.env")).toThrow(UsageError);
  });

  test("file without URL is a usage error", async () => {
    const file = path.join(dir, "empty.env");
    await writeFile(file, "SUPABASE_ANON_KEY=x\n");

    expect(() => loadSettings({}, dir, file)).toThrow(/SUPABASE_URL is missing/);
  });
});

describe("credential checks", () => {
  const base = { url: "http://x", localToolboxId: undefined, source: "the environment", userTokenName: "BERTH_USER_JWT" };

  test("user command needs anon key", () => {
    const settings = { ...base, anonKey: undefined, userToken: "t", serviceRoleKey: undefined };

    expect(() => requireUserCredentials(settings)).toThrow("SUPABASE_ANON_KEY is missing in the environment");
  });

  test("user command needs token", () => {
    const settings = { ...base, anonKey: "a", userToken: undefined, serviceRoleKey: undefined };

    expect(() => requireUserCredentials(settings)).toThrow("BERTH_USER_JWT is missing in the environment, and so is BERTH_DEV_USER_JWT.");
  });

  test("reconcile needs service key", () => {
    const settings = { ...base, anonKey: "a", userToken: "t", serviceRoleKey: undefined };

    expect(() => requireServiceRoleKey(settings)).toThrow("SUPABASE_SERVICE_ROLE_KEY is missing in the environment");
  });
});

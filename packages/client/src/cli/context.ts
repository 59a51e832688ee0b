import { createBerthClient, type BerthClient } from "../client.ts";
import { loadSettings, requireServiceRoleKey, requireUserCredentials, type Settings } from "./config.ts";
import { createNodeSupabaseClient } from "./connect.ts";
import type { SpinnerStream } from "./spinner.ts";

/** The process around the CLI, passed in so tests can run commands in-process. */
export interface CliIo {
  stdout: SpinnerStream;
  stderr: SpinnerStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
  now: () => Date;
}

/** The environment of one command run: output streams, `--json`, and lazily built settings and clients. */
export interface CommandContext {
  io: CliIo;
  json: boolean;
  settings(): Settings;
  /** A client that calls the API as the signed-in user. */
  userClient(): BerthClient;
  /** A client that calls the API with the service role key. */
  serviceClient(): BerthClient;
  print(text: string): void;
}

export function createCommandContext(io: CliIo, options: { json: boolean; configFile?: string }): CommandContext {
  let settings: Settings | undefined;
  const loadOnce = (): Settings => {
    settings ??= loadSettings(io.env, io.cwd, options.configFile);
    return settings;
  };

  return {
    io,
    json: options.json,
    settings: loadOnce,
    userClient() {
      const loaded = loadOnce();
      const { anonKey, userToken } = requireUserCredentials(loaded);
      return createBerthClient(createNodeSupabaseClient(loaded.url, anonKey, userToken));
    },
    serviceClient() {
      const loaded = loadOnce();
      const key = requireServiceRoleKey(loaded);
      return createBerthClient(createNodeSupabaseClient(loaded.url, key, key));
    },
    print: (text) => {
      io.stdout.write(text);
    },
  };
}

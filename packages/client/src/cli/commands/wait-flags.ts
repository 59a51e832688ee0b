import type { OptionsConfig, ParsedArgs } from "../args.ts";
import { parseInteger } from "../args.ts";

/** Seconds `berth` waits for an instance to settle when --timeout is not given. */
export const DEFAULT_TIMEOUT_SECONDS = 180;
const MAX_TIMEOUT_SECONDS = 24 * 3600;

export const WAIT_OPTIONS = {
  "no-wait": { type: "boolean", default: false },
  timeout: { type: "string" },
} as const satisfies OptionsConfig;

export const WAIT_OPTION_HELP: Array<[string, string]> = [
  ["--no-wait", "return when the request is accepted, without waiting for the instance to settle"],
  ["--timeout SECONDS", `how long to wait for the instance to settle (default ${DEFAULT_TIMEOUT_SECONDS})`],
];

export function waitSettings(args: ParsedArgs): { wait: boolean; timeoutMs: number } {
  const raw = args.values.timeout as string | undefined;
  const seconds = raw === undefined ? DEFAULT_TIMEOUT_SECONDS : parseInteger("--timeout", raw, 1, MAX_TIMEOUT_SECONDS);
  return { wait: args.values["no-wait"] !== true, timeoutMs: seconds * 1000 };
}

import { BerthError } from "../errors.ts";

/** Exit codes of `berth`, documented in `berth help` and the package README. */
export const ExitCode = {
  /** The command did what it was asked to do. */
  ok: 0,
  /** The action failed, timed out or ended in another state than requested. */
  failed: 1,
  /** The command line or the configuration is invalid, or the server rejected a value as invalid. */
  usage: 2,
  /** The instance or toolbox does not exist, or belongs to another user. */
  notFound: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An invalid command line or configuration. Exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A failure the CLI detected itself, such as a timeout, with its code and exit code. */
export class CliError extends Error {
  override name = "CliError";

  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** Stable code for `--json` output, in the style of the API's error codes. */
    readonly code: string,
    /**
     * The message of `--json` output, which prints `code` as a field of its own and ids in
     * full. Defaults to `message`.
     */
    readonly jsonMessage: string = message,
  ) {
    super(message);
  }
}

/** Next steps printed after an API error, by error code. */
const HINTS: Record<string, string> = {
  instance_not_found: "Run `berth ls` to see your instances.",
  toolbox_not_found: "Run `berth toolboxes` to see your toolboxes.",
  not_found: "Run `berth ls` or `berth toolboxes` to see what exists.",
  unauthorized: "Check the user token in BERTH_USER_JWT, or in BERTH_DEV_USER_JWT when BERTH_USER_JWT is unset. It may have expired: `npm start` writes a fresh one to .berth/dev.env.",
  forbidden: "This command needs other credentials: `berth reconcile` takes SUPABASE_SERVICE_ROLE_KEY, everything else a user token.",
  name_taken: "Choose another --name, or remove the existing instance with `berth rm NAME`.",
  toolbox_unavailable: "Run `berth toolboxes` to see the toolbox's status.",
  ports_exhausted: "Remove instances you no longer need with `berth rm`.",
  lease_held: "Another operation on this instance is in progress. Wait for it to finish, then retry.",
  request_in_progress: "The same request is still being processed. Wait for it to finish, then retry.",
  agent_unreachable: "The toolbox's agent did not respond. The reconciler retries; check later with `berth ls`.",
  invalid_request: "Run `berth help COMMAND` for the accepted values.",
  invalid_response: "The control plane and this CLI disagree on the API; update both to the same version.",
};

/** An error as `berth` reports it: one message, field issues, a code and the exit code. */
export interface RenderedError {
  code: string;
  /** The message for a terminal, which names the code and may shorten ids. */
  message: string;
  /** The message for `--json`, without the code, which is a field of its own. */
  jsonMessage: string;
  /** Problems with single fields, from the `details.fields` of an `invalid_request` error. */
  fields: Array<{ field: string; message: string }>;
  exitCode: ExitCode;
}

/** Turns any error into what `berth` prints and the exit code. */
export function renderError(error: unknown, context: { url?: string } = {}): RenderedError {
  if (error instanceof UsageError) {
    return { code: "usage_error", message: error.message, jsonMessage: error.message, fields: [], exitCode: ExitCode.usage };
  }
  if (error instanceof CliError) {
    return { code: error.code, message: error.message, jsonMessage: error.jsonMessage, fields: [], exitCode: error.exitCode };
  }
  if (error instanceof BerthError) {
    const description = withoutFinalPeriod(error.message);
    const hint = hintFor(error, context);
    return {
      code: error.code,
      message: `${description} (code ${error.code}).${hint}`,
      jsonMessage: `${description}.${hint}`,
      fields: fieldIssues(error.details),
      exitCode: exitCodeFor(error),
    };
  }

  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  const message = `unexpected failure in berth: ${detail}`;
  return { code: "internal_error", message, jsonMessage: message, fields: [], exitCode: ExitCode.failed };
}

/** Formats an error for stderr: `error: ...` lines, or a JSON error body with `--json`. */
export function formatError(rendered: RenderedError, json: boolean): string {
  if (json) {
    const body = { error: { code: rendered.code, message: rendered.jsonMessage, details: { fields: rendered.fields, exit_code: rendered.exitCode } } };
    return `${JSON.stringify(body)}\n`;
  }
  const lines = [`error: ${rendered.message}`, ...rendered.fields.map((field) => `  ${field.field}: ${field.message}`)];
  return `${lines.join("\n")}\n`;
}

/** Codes that mean the instance or toolbox a command names does not exist (exit code 3). */
const NOT_FOUND_CODES = new Set(["instance_not_found", "toolbox_not_found", "not_found"]);

/**
 * Maps an API error to an exit code: 3 for a missing instance or toolbox, 2 for a value the
 * server or the client rejected, 1 for everything else. Other 404 codes such as
 * `image_not_found` are failed actions, because the command's target exists.
 */
export function exitCodeFor(error: BerthError): ExitCode {
  if (NOT_FOUND_CODES.has(error.code)) return ExitCode.notFound;
  if (error.code === "invalid_request") return ExitCode.usage;
  return ExitCode.failed;
}

function hintFor(error: BerthError, context: { url?: string }): string {
  if (error.code === "network_error") {
    return ` Check that the control plane is running at ${context.url ?? "SUPABASE_URL"}; \`npm start\` starts one locally.`;
  }
  if (error.code === "data_api_error" && error.status === 404) {
    return " SUPABASE_URL serves no Data API (PostgREST) at /rest/v1. The local stack of `npm start` serves only the functions, so this command needs a Supabase project.";
  }
  const hint = HINTS[error.code];
  return hint ? ` ${hint}` : "";
}

function withoutFinalPeriod(message: string): string {
  return message.replace(/[.\s]+$/, "");
}

function fieldIssues(details: unknown): Array<{ field: string; message: string }> {
  if (typeof details !== "object" || details === null || !("fields" in details) || !Array.isArray(details.fields)) return [];
  return details.fields.filter(
    (field): field is { field: string; message: string } => typeof field?.field === "string" && typeof field?.message === "string",
  );
}

import { z } from "zod";

/**
 * Stable error codes returned by the agent and the edge functions, with the HTTP status
 * each one maps to. Clients branch on the code, never on the message.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  instance_not_found: 404,
  toolbox_not_found: 404,
  image_not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  lease_held: 409,
  lease_lost: 409,
  name_taken: 409,
  request_in_progress: 409,
  toolbox_unavailable: 409,
  port_in_use: 409,
  toolbox_not_empty: 409,
  version_conflict: 409,
  invalid_transition: 409,
  payload_too_large: 413,
  idempotency_key_reused: 422,
  ports_exhausted: 507,
  agent_error: 502,
  agent_unreachable: 503,
  function_unavailable: 503,
  engine_unavailable: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ErrorCodeSchema = z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]);

/** The JSON body of every error response: `{"error": {"code", "message", "details"}}`. */
export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Returns the HTTP status for a code, or 500 for a code this version does not know. */
export function httpStatusFor(code: string): number {
  return (ERROR_STATUS as Record<string, number>)[code] ?? 500;
}

/** Builds an error body; `details` is left out when undefined so responses stay small. */
export function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return details === undefined
    ? { error: { code, message } }
    : { error: { code, message, details } };
}

// Field messages ------------------------------------------------------------------------------

type IssueOf<Code extends z.core.$ZodIssue["code"]> = z.core.$ZodRawIssue<Extract<z.core.$ZodIssue, { code: Code }>>;

/**
 * A zod error map that words each problem as a predicate of the field, such as "is required"
 * or "must be a whole number", so that `${field} ${message}` reads as one sentence like the
 * schemas' own messages ("toolbox_id must be a UUID"). Messages set on a schema or a check take
 * precedence. Issue kinds it does not word get zod's own message.
 *
 * Pass it per parse: `schema.safeParse(input, { error: fieldErrorMap })`. It is not installed
 * with `z.config`, because that setting is process-wide and would reword the messages of any
 * application that embeds the client.
 */
export const fieldErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type":
      return invalidTypeMessage(issue);
    case "too_small":
      return tooSmallMessage(issue);
    case "too_big":
      return tooBigMessage(issue);
    case "invalid_format":
      return invalidFormatMessage(issue);
    case "invalid_value":
      return `must be ${issue.values.length === 1 ? "" : "one of "}${issue.values.map(quote).join(", ")}`;
    case "unrecognized_keys":
      return `contains unknown field${issue.keys.length === 1 ? "" : "s"} ${issue.keys.map(quote).join(", ")}`;
    case "invalid_key":
      return `is an invalid key: it ${issue.issues[0]?.message ?? "has an invalid format"}`;
    case "invalid_element":
      return "contains an invalid item";
    case "invalid_union":
      return issue.inclusive === false ? "matches more than one accepted form" : "does not match any accepted form";
    case "not_multiple_of":
      return `must be a multiple of ${issue.divisor}`;
    case "custom":
      return "is invalid";
    default:
      return undefined;
  }
};

const TYPE_MESSAGES: Record<string, string> = {
  string: "must be a string",
  number: "must be a number",
  int: "must be a whole number",
  boolean: "must be true or false",
  array: "must be an array",
  tuple: "must be an array",
  object: "must be an object",
  record: "must be an object",
  null: "must be null",
};

function invalidTypeMessage(issue: IssueOf<"invalid_type">): string {
  if (issue.input === undefined) return "is required";
  if (expectsInteger(issue)) return TYPE_MESSAGES.int as string;
  return TYPE_MESSAGES[issue.expected] ?? `must be of type ${issue.expected}`;
}

const INTEGER_FORMATS = new Set(["safeint", "int32", "uint32"]);

/**
 * Returns whether the schema expects an integer. zod 4.6 reports `expected: "int"` only for a
 * fractional number. For input of another type, such as the string "8080", it reports
 * `expected: "number"`, and only the schema's `format` distinguishes it from a plain number.
 */
function expectsInteger(issue: IssueOf<"invalid_type">): boolean {
  if (issue.expected === "int") return true;
  const definition = issue.inst?._zod.def as { format?: unknown } | undefined;
  return INTEGER_FORMATS.has(String(definition?.format));
}

/** Unit of a length or size limit, by the kind of value zod reports in `origin`. */
const SIZE_UNITS: Record<string, string> = { string: "character", array: "item", set: "item", file: "byte" };

/** Formats a count with its unit, such as "1 item" or "3 characters". */
function countOf(count: number | bigint, unit: string): string {
  return `${count} ${unit}${Number(count) === 1 ? "" : "s"}`;
}

function tooSmallMessage(issue: IssueOf<"too_small">): string {
  const unit = SIZE_UNITS[issue.origin];
  if (unit === undefined) return issue.inclusive === false ? `must be greater than ${issue.minimum}` : `must be at least ${issue.minimum}`;

  if (issue.exact) return `must have exactly ${countOf(issue.minimum, unit)}`;
  if (Number(issue.minimum) === 1) return "must not be empty";
  return `must have at least ${countOf(issue.minimum, unit)}`;
}

function tooBigMessage(issue: IssueOf<"too_big">): string {
  const unit = SIZE_UNITS[issue.origin];
  if (unit === undefined) return issue.inclusive === false ? `must be less than ${issue.maximum}` : `must be at most ${issue.maximum}`;

  if (issue.exact) return `must have exactly ${countOf(issue.maximum, unit)}`;
  return `must have at most ${countOf(issue.maximum, unit)}`;
}

const FORMAT_MESSAGES: Record<string, string> = {
  guid: "must be a UUID",
  uuid: "must be a UUID",
  datetime: "must be an ISO 8601 date and time such as 2025-01-31T12:00:00Z",
  date: "must be an ISO 8601 date such as 2025-01-31",
  time: "must be an ISO 8601 time such as 12:00:00",
  email: "must be an email address",
  url: "must be a URL",
  regex: "has an invalid format",
};

function invalidFormatMessage(issue: IssueOf<"invalid_format">): string {
  if (issue.format === "starts_with") return `must start with ${quote(issue.prefix)}`;
  if (issue.format === "ends_with") return `must end with ${quote(issue.suffix)}`;
  if (issue.format === "includes") return `must contain ${quote(issue.includes)}`;
  return FORMAT_MESSAGES[issue.format] ?? `must be a valid ${issue.format}`;
}

function quote(value: unknown): string {
  return typeof value === "bigint" ? String(value) : JSON.stringify(value) ?? String(value);
}

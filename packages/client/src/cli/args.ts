import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./exit.ts";

export type OptionsConfig = NonNullable<ParseArgsConfig["options"]>;

/** Options every command accepts. */
export const COMMON_OPTIONS = {
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
  // NOTE: not named --env-file because Node 20 reads that flag anywhere in its arguments, even
  // after the script path, and exits with code 9 when the file does not exist.
  config: { type: "string" },
} as const satisfies OptionsConfig;

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/**
 * Parses a command's arguments with `util.parseArgs` in strict mode and turns its errors into
 * usage errors that name the command and the help to run, as for `berth deploy --prot 80`.
 */
export function parseCommandArgs(command: string, argv: string[], options: OptionsConfig): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
    return { values: values as ParsedArgs["values"], positionals };
  } catch (error) {
    throw new UsageError(`${describeParseError(error)} for \`berth ${command}\`. Run \`berth help ${command}\` for its options.`);
  }
}

function describeParseError(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const option = /'(-[^' ]+)/.exec(message)?.[1];

  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option ${option ?? message}`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    return message.includes("argument missing") ? `option ${option ?? ""} needs a value` : `option ${option ?? ""} takes no value`;
  }
  return message;
}

/** Returns the only positional argument, or raises a usage error naming what is expected. */
export function singlePositional(command: string, positionals: string[], name: string): string {
  if (positionals.length === 1) return positionals[0] as string;
  if (positionals.length === 0) throw new UsageError(`\`berth ${command}\` needs ${name}. Usage: berth ${command} ${name.toUpperCase()}`);
  throw new UsageError(`\`berth ${command}\` takes one ${name}, got ${positionals.length}: ${positionals.join(" ")}`);
}

/** Raises a usage error when a command that takes no positional arguments got some. */
export function noPositionals(command: string, positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`\`berth ${command}\` takes no arguments, got: ${positionals.join(" ")}`);
}

/** Parses a whole number within [min, max] given for `flag`. */
export function parseInteger(flag: string, value: string, min: number, max: number): number {
  const number = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(value)}: use a whole number from ${min} to ${max}`);
  }
  return number;
}

/**
 * Parses repeated `NAME=VALUE` flags into a map. A value may contain `=`. Values are never echoed
 * in errors, because `--secret` values are secrets. `fromEnvironment` lets a bare `NAME` take its
 * value from that environment variable, which keeps secrets out of shell history.
 */
export function parseAssignments(flag: string, entries: string[], fromEnvironment?: NodeJS.ProcessEnv): Record<string, string> {
  const result: Record<string, string> = {};
  for (const entry of entries) {
    const separator = entry.indexOf("=");
    const name = separator === -1 ? entry : entry.slice(0, separator);
    if (name === "") throw new UsageError(`invalid ${flag}: the name before "=" is empty. Use ${flag} NAME=VALUE.`);
    if (Object.hasOwn(result, name)) throw new UsageError(`${flag} ${name} is given twice; give each name once.`);

    result[name] = separator === -1 ? valueFromEnvironment(flag, name, fromEnvironment) : entry.slice(separator + 1);
  }
  return result;
}

function valueFromEnvironment(flag: string, name: string, env: NodeJS.ProcessEnv | undefined): string {
  if (env === undefined) throw new UsageError(`invalid ${flag} ${name}: use ${flag} ${name}=VALUE.`);
  const value = env[name];
  if (value === undefined) {
    throw new UsageError(`${flag} ${name} has no value and ${name} is not set in the environment. Use ${flag} ${name}=VALUE or export ${name}.`);
  }
  return value;
}

/**
 * Splits a command line into arguments the way a POSIX shell does for quoting: whitespace
 * separates words, single quotes keep everything literally, double quotes keep spaces and honour
 * backslash escapes, and a backslash outside quotes escapes the next character. Variables, globs
 * and other expansions are not performed.
 */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  // Undefined between words, so `""` still yields an empty argument.
  let word: string | undefined;
  let index = 0;

  while (index < line.length) {
    if (/\s/.test(line[index] as string)) {
      if (word !== undefined) words.push(word);
      word = undefined;
      index += 1;
      continue;
    }
    const token = readToken(line, index);
    word = (word ?? "") + token.text;
    index = token.next;
  }

  if (word !== undefined) words.push(word);
  return words;
}

/** Reads the quoted section, escaped character or plain character that starts at `index`. */
function readToken(line: string, index: number): { text: string; next: number } {
  const char = line[index] as string;
  if (char === "\\" && index + 1 < line.length) return { text: line[index + 1] as string, next: index + 2 };
  if (char === '"') return readDoubleQuoted(line, index + 1);
  if (char !== "'") return { text: char, next: index + 1 };

  const end = line.indexOf("'", index + 1);
  if (end === -1) throw unclosedQuote("single");
  return { text: line.slice(index + 1, end), next: end + 1 };
}

/** Reads up to the closing double quote; a backslash escapes only `"`, `\\`, `$` and backtick, as in sh. */
function readDoubleQuoted(line: string, start: number): { text: string; next: number } {
  let text = "";
  for (let index = start; index < line.length; index += 1) {
    const char = line[index] as string;
    if (char === '"') return { text, next: index + 1 };
    if (char === "\\" && /["\\$`]/.test(line[index + 1] ?? "")) {
      text += line[index + 1];
      index += 1;
      continue;
    }
    text += char;
  }
  throw unclosedQuote("double");
}

function unclosedQuote(kind: "single" | "double"): UsageError {
  return new UsageError(`invalid --command: the ${kind} quote is not closed`);
}

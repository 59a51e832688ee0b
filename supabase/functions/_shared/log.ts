/**
 * Field names whose values are never written to a log line, at any depth: `token`,
 * `agent_token`, `secrets`, `env` and the like, but not `token_version`.
 */
const REDACTED_KEYS = /(^|_)(authorization|token|secret|secrets|password|apikey|api_key|key|env|cookie)$/i;

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** Returns a logger that adds `fields` to every line, for ids bound at the start of an operation. */
  child(fields: Record<string, unknown>): Logger;
}

export type LogSink = (line: string) => void;

/**
 * Creates a JSON-lines logger: one object per line with time, level, a fixed message and the
 * data in fields. Supabase collects a function's console output, so that is the default sink.
 */
export function createLogger(bound: Record<string, unknown> = {}, sink: LogSink = (line) => console.log(line)): Logger {
  const write = (level: LogLevel, message: string, fields: Record<string, unknown> = {}) => {
    const record = { time: new Date().toISOString(), level, msg: message, ...redact(bound), ...redact(fields) };
    sink(JSON.stringify(record));
  };
  return {
    debug: (message, fields) => write("debug", message, fields),
    info: (message, fields) => write("info", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    error: (message, fields) => write("error", message, fields),
    child: (fields) => createLogger({ ...bound, ...fields }, sink),
  };
}

function redact(fields: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    result[key] = REDACTED_KEYS.test(key) ? "[redacted]" : redactValue(value);
  }
  return result;
}

function redactValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactValue);
  if (value !== null && typeof value === "object" && !(value instanceof Date)) {
    return redact(value as Record<string, unknown>);
  }
  return value;
}

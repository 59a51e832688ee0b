/** Fields every JSON log line carries that the prefix or the terminal already shows. */
const HIDDEN_FIELDS = new Set(["time", "level", "msg", "pid", "hostname", "service", "function"]);

const LEVEL_NAMES: Record<string, string> = { "10": "trace", "20": "debug", "30": "info", "40": "warn", "50": "error", "60": "fatal" };

/**
 * Turns a JSON log line into `level message key=value ...` for a person at a terminal, or
 * returns null for routine lines (successful polls and heartbeats, quiet reconcile passes)
 * that would bury the rest. Lines that are not JSON come back unchanged.
 */
export function formatLogLine(line: string): string | null {
  let record: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return line;
    record = parsed as Record<string, unknown>;
  } catch {
    return line;
  }

  if (isRoutine(record)) return null;

  const level = LEVEL_NAMES[String(record.level)] ?? String(record.level ?? "info");
  const fields = Object.entries(record)
    .filter(([key, value]) => !HIDDEN_FIELDS.has(key) && value !== null && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
  return [level === "info" ? "" : `${level.toUpperCase()} `, String(record.msg ?? ""), fields.length ? ` ${fields.join(" ")}` : ""].join("");
}

function isRoutine(record: Record<string, unknown>): boolean {
  const status = Number(record.status);
  const succeeded = Number.isFinite(status) && status < 400;
  const path = String(record.path ?? "");

  if (succeeded && (path === "/v1/inventory" || path === "/healthz" || path.endsWith("/dtma-heartbeat"))) return true;
  if (record.msg === "reconcile requested" || record.msg === "reconcile pass started") return true;
  if (record.msg === "reconcile pass finished" && record.drift_found === 0 && record.failures === 0) return true;
  return record.msg === "heartbeat sent" || record.msg === "heartbeat delivered";
}

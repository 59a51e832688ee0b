/** Number of id characters shown in tables, enough to tell apart the ids of one owner. */
export const SHORT_ID_LENGTH = 8;

/** Shortens a UUID for display. `berth` accepts the short form back as an id prefix. */
export function shortId(id: string): string {
  return id.slice(0, SHORT_ID_LENGTH);
}

/**
 * Formats rows as a table with a header line, columns padded to their widest cell and two
 * spaces between columns. The last column is not padded, so lines carry no trailing spaces.
 */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(displayWidth(header), ...rows.map((row) => displayWidth(row[column] ?? ""))));
  const lines = [headers, ...rows].map((cells) =>
    headers
      .map((_, column) => {
        const cell = cells[column] ?? "";
        const isLast = column === headers.length - 1;
        return isLast ? cell : cell + " ".repeat((widths[column] ?? 0) - displayWidth(cell));
      })
      .join("  ")
      .trimEnd(),
  );
  return `${lines.join("\n")}\n`;
}

/** Counts code points, so `→` and `…` take one column like ASCII characters. */
function displayWidth(text: string): number {
  return [...text].length;
}

const MINUTE_SECONDS = 60;
const HOUR_SECONDS = 60 * MINUTE_SECONDS;
const DAY_SECONDS = 24 * HOUR_SECONDS;

/**
 * Formats a timestamp relative to `now`: "just now" within 5 seconds, then "45s ago", "3m ago",
 * "2h ago" and "4d ago", rounded down. Times ahead of `now` read "in 3m". Null reads "never".
 */
export function relativeTime(timestamp: string | null, now: Date): string {
  if (timestamp === null) return "never";
  const then = Date.parse(timestamp);
  if (Number.isNaN(then)) return timestamp;

  const seconds = Math.floor(Math.abs(now.getTime() - then) / 1000);
  if (seconds < 5) return "just now";

  const amount = compactDuration(seconds);
  return then > now.getTime() ? `in ${amount}` : `${amount} ago`;
}

/** Formats a duration in whole seconds as its largest unit: "45s", "3m", "2h", "4d". */
export function compactDuration(seconds: number): string {
  if (seconds < MINUTE_SECONDS) return `${seconds}s`;
  if (seconds < HOUR_SECONDS) return `${Math.floor(seconds / MINUTE_SECONDS)}m`;
  if (seconds < DAY_SECONDS) return `${Math.floor(seconds / HOUR_SECONDS)}h`;
  return `${Math.floor(seconds / DAY_SECONDS)}d`;
}

/** Serialises a value for `--json`: two-space indentation and a final newline. */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Text put in place of a secret value found in container output. */
export const REDACTED = "[redacted]";

/**
 * Shorter values are not replaced: a secret of one to three characters would match all over
 * ordinary log text, and hiding those matches would reveal more about the value than showing them.
 */
const MIN_REDACTED_LENGTH = 4;

/**
 * Replaces every occurrence of the instance's secret values in text that came from its
 * container (log lines, a crash's log tail) before that text reaches a response or a table the
 * owner can read. A container can print its own environment, so this is the last line of defence.
 */
export function redactSecretValues(text: string, secretValues: Iterable<string>): string {
  const values = [...new Set(secretValues)]
    .filter((value) => value.length >= MIN_REDACTED_LENGTH)
    .sort((a, b) => b.length - a.length);

  let result = text;
  for (const value of values) result = result.split(value).join(REDACTED);
  return result;
}

import { describe, expect, test } from "vitest";
import { REDACTED, redactSecretValues } from "../../supabase/functions/_shared/redact.ts";

describe("redactSecretValues", () => {
  test("replaces every occurrence", () => {
    expect(redactSecretValues("key=abcd1234 again abcd1234", ["abcd1234"])).toBe(`key=${REDACTED} again ${REDACTED}`);
  });

  test("longer value wins over its prefix", () => {
    expect(redactSecretValues("token abcdefgh", ["abcd", "abcdefgh"])).toBe(`token ${REDACTED}`);
  });

  test("very short values are left alone", () => {
    expect(redactSecretValues("a b c", ["a", "b c"])).toBe("a b c");
  });

  test("text without secrets is unchanged", () => {
    expect(redactSecretValues("nothing here", ["s3cr3t-value"])).toBe("nothing here");
  });
});

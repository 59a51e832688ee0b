import { describe, expect, test } from "vitest";
import { parseAssignments, parseCommandArgs, parseInteger, singlePositional, splitCommandLine } from "../../src/cli/args.ts";
import { UsageError } from "../../src/cli/exit.ts";

function usageMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error("expected a UsageError, but nothing was thrown");
}

describe("parseCommandArgs", () => {
  const options = { name: { type: "string" }, env: { type: "string", multiple: true }, "no-wait": { type: "boolean", default: false } } as const;

  test("reads options and positionals", () => {
    const parsed = parseCommandArgs("deploy", ["--name", "search", "--env", "A=1", "--env", "B=2", "--no-wait", "extra"], options);

    expect(parsed.values.name).toBe("search");
    expect(parsed.values.env).toEqual(["A=1", "B=2"]);
    expect(parsed.values["no-wait"]).toBe(true);
    expect(parsed.positionals).toEqual(["extra"]);
  });

  test("accepts common options", () => {
    const parsed = parseCommandArgs("ls", ["--json", "--config", "x.env", "-h"], {});

    expect(parsed.values.json).toBe(true);
    expect(parsed.values.config).toBe("x.env");
    expect(parsed.values.help).toBe(true);
  });

  test("unknown option names command", () => {
    const message = usageMessage(() => parseCommandArgs("deploy", ["--prot", "80"], options));

    expect(message).toBe("unknown option --prot for `berth deploy`. Run `berth help deploy` for its options.");
  });

  test("missing value is reported", () => {
    const message = usageMessage(() => parseCommandArgs("deploy", ["--name"], options));

    expect(message).toContain("--name needs a value");
  });
});

describe("parseAssignments", () => {
  test("splits at the first equals sign", () => {
    expect(parseAssignments("--env", ["URL=http://x/?a=b", "EMPTY="])).toEqual({ URL: "http://x/?a=b", EMPTY: "" });
  });

  test("takes bare names from environment", () => {
    expect(parseAssignments("--secret", ["API_KEY"], { API_KEY: "from-env" })).toEqual({ API_KEY: "from-env" });
  });

  test("bare name without environment fails", () => {
    const message = usageMessage(() => parseAssignments("--secret", ["API_KEY"], {}));

    expect(message).toBe("--secret API_KEY has no value and API_KEY is not set in the environment. Use --secret API_KEY=VALUE or export API_KEY.");
  });

  test("bare name is invalid for env", () => {
    expect(usageMessage(() => parseAssignments("--env", ["MODE"]))).toBe("invalid --env MODE: use --env MODE=VALUE.");
  });

  test("duplicate name fails", () => {
    expect(usageMessage(() => parseAssignments("--env", ["A=1", "A=2"]))).toBe("--env A is given twice; give each name once.");
  });

  test("errors never echo secret values", () => {
    const message = usageMessage(() => parseAssignments("--secret", ["TOKEN=hunter2", "TOKEN=hunter3"]));

    expect(message).not.toContain("hunter");
  });

  test("empty name fails", () => {
    expect(usageMessage(() => parseAssignments("--env", ["=value"]))).toContain('the name before "=" is empty');
  });
});

describe("parseInteger", () => {
  test("accepts bounds", () => {
    expect(parseInteger("--port", "1", 1, 65535)).toBe(1);
    expect(parseInteger("--port", "65535", 1, 65535)).toBe(65535);
  });

  test.each(["0", "65536", "-1", "8080.5", "80a", "", " 80"])("rejects %j", (value) => {
    expect(usageMessage(() => parseInteger("--port", value, 1, 65535))).toBe(`invalid --port ${JSON.stringify(value)}: use a whole number from 1 to 65535`);
  });
});

describe("singlePositional", () => {
  test("returns the one argument", () => {
    expect(singlePositional("stop", ["search"], "instance")).toBe("search");
  });

  test("missing argument shows usage", () => {
    expect(usageMessage(() => singlePositional("stop", [], "instance"))).toBe("`berth stop` needs instance. Usage: berth stop INSTANCE");
  });

  test("extra arguments are rejected", () => {
    expect(usageMessage(() => singlePositional("stop", ["a", "b"], "instance"))).toBe("`berth stop` takes one instance, got 2: a b");
  });
});

describe("splitCommandLine", () => {
  test.each([
    ["node server.js --port 8080", ["node", "server.js", "--port", "8080"]],
    ["  spaced   out  ", ["spaced", "out"]],
    [`python -c 'print("hi there")'`, ["python", "-c", 'print("hi there")']],
    [`echo "a b" c`, ["echo", "a b", "c"]],
    [`echo "say \\"hi\\""`, ["echo", 'say "hi"']],
    [`echo 'it''s'`, ["echo", "its"]],
    [`echo a\\ b`, ["echo", "a b"]],
    [`echo ""`, ["echo", ""]],
    [`echo "$HOME"`, ["echo", "$HOME"]],
    [`echo "back\\slash"`, ["echo", "back\\slash"]],
  ])("splits %j", (line, expected) => {
    expect(splitCommandLine(line)).toEqual(expected);
  });

  test("unclosed double quote fails", () => {
    expect(usageMessage(() => splitCommandLine(`echo "open`))).toBe("invalid --command: the double quote is not closed");
  });

  test("unclosed single quote fails", () => {
    expect(usageMessage(() => splitCommandLine(`echo 'open`))).toBe("invalid --command: the single quote is not closed");
  });

  test("trailing backslash stays literal", () => {
    expect(splitCommandLine("echo a\\")).toEqual(["echo", "a\\"]);
  });
});

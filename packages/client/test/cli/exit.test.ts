import { describe, expect, test } from "vitest";
import { CliError, ExitCode, formatError, renderError, UsageError } from "../../src/cli/exit.ts";
import { BerthError } from "../../src/errors.ts";

describe("renderError exit codes", () => {
  test.each([
    ["instance_not_found", 404, ExitCode.notFound],
    ["toolbox_not_found", 404, ExitCode.notFound],
    ["not_found", 404, ExitCode.notFound],
    ["invalid_request", 400, ExitCode.usage],
    ["invalid_request", 0, ExitCode.usage],
    ["name_taken", 409, ExitCode.failed],
    ["toolbox_not_empty", 409, ExitCode.failed],
    ["agent_unreachable", 503, ExitCode.failed],
    ["unauthorized", 401, ExitCode.failed],
    ["network_error", 0, ExitCode.failed],
    ["internal_error", 500, ExitCode.failed],
    ["data_api_error", 404, ExitCode.failed],
    ["image_not_found", 404, ExitCode.failed],
  ])("%s with HTTP %i exits %i", (code, status, exitCode) => {
    expect(renderError(new BerthError(code, status, "message")).exitCode).toBe(exitCode);
  });

  test("usage error exits 2", () => {
    expect(renderError(new UsageError("bad")).exitCode).toBe(ExitCode.usage);
  });

  test("cli error keeps its code", () => {
    const rendered = renderError(new CliError("timed out", ExitCode.failed, "timed_out"));

    expect(rendered.exitCode).toBe(ExitCode.failed);
    expect(rendered.code).toBe("timed_out");
  });

  test("unexpected error exits 1", () => {
    expect(renderError(new TypeError("boom")).exitCode).toBe(ExitCode.failed);
  });
});

describe("error messages", () => {
  test("api error has code and hint", () => {
    const rendered = renderError(new BerthError("toolbox_not_found", 404, "toolbox 1234 not found."));

    expect(formatError(rendered, false)).toBe("error: toolbox 1234 not found (code toolbox_not_found). Run `berth toolboxes` to see your toolboxes.\n");
  });

  test("network error names the URL", () => {
    const rendered = renderError(new BerthError("network_error", 0, "GET /instances got no response"), { url: "http://127.0.0.1:54321" });

    expect(rendered.message).toContain("Check that the control plane is running at http://127.0.0.1:54321");
  });

  test("field issues are listed", () => {
    const error = new BerthError("invalid_request", 400, "invalid request body", { fields: [{ field: "name", message: "must be a DNS label" }] });

    expect(formatError(renderError(error), false)).toBe(
      "error: invalid request body (code invalid_request). Run `berth help COMMAND` for the accepted values.\n  name: must be a DNS label\n",
    );
  });

  test("json error uses the json message", () => {
    const error = new CliError("instance 11111111… not found (code instance_not_found).", ExitCode.notFound, "instance_not_found", "instance 11111111-2222-3333-4444-555555555555 not found.");

    const terminal = formatError(renderError(error), false);
    const json = JSON.parse(formatError(renderError(error), true));

    expect(terminal).toBe("error: instance 11111111… not found (code instance_not_found).\n");
    expect(json.error.code).toBe("instance_not_found");
    expect(json.error.message).toBe("instance 11111111-2222-3333-4444-555555555555 not found.");
  });

  test("json error is one parsable line", () => {
    const text = formatError(renderError(new BerthError("name_taken", 409, "name search is taken")), true);

    expect(text.endsWith("\n")).toBe(true);
    expect(JSON.parse(text)).toEqual({
      error: {
        code: "name_taken",
        message: "name search is taken. Choose another --name, or remove the existing instance with `berth rm NAME`.",
        details: { fields: [], exit_code: 1 },
      },
    });
  });
});

import { randomUUID } from "node:crypto";
import type { InstanceDeployRequest } from "@berth/shared";
import { noPositionals, parseAssignments, parseInteger, splitCommandLine, type ParsedArgs } from "../args.ts";
import type { Command } from "../command.ts";
import type { CommandContext } from "../context.ts";
import { UsageError } from "../exit.ts";
import { resolveToolboxId } from "../resolve.ts";
import { settleAction } from "../settle.ts";
import { WAIT_OPTION_HELP, WAIT_OPTIONS, waitSettings } from "./wait-flags.ts";

export const deployCommand: Command = {
  name: "deploy",
  summary: "deploy an MCP server image as a new instance on a toolbox",
  usage: "berth deploy --name NAME --image IMAGE --port PORT [options]",
  optionHelp: [
    ["--name NAME", "instance name: 1 to 63 lowercase letters, digits or hyphens (required)"],
    ["--image IMAGE", "Docker image reference, such as ghcr.io/owner/server:1.2 (required)"],
    ["--port PORT", "port the server listens on inside the container, 1 to 65535 (required)"],
    ["--toolbox TOOLBOX", "toolbox id, id prefix or name (default BERTH_LOCAL_TOOLBOX_ID)"],
    ["--env NAME=VALUE", "plain environment variable, repeatable"],
    ["--secret NAME[=VALUE]", "secret variable, never shown; without =VALUE read from your environment; repeatable"],
    ["--command 'ARGS'", "replaces the image's command, split into arguments like a shell does"],
    ["--mcp-path PATH", "URL path of the MCP endpoint in the container (default /mcp)"],
    ...WAIT_OPTION_HELP,
  ],
  options: {
    name: { type: "string" },
    image: { type: "string" },
    port: { type: "string" },
    toolbox: { type: "string" },
    env: { type: "string", multiple: true },
    secret: { type: "string", multiple: true },
    command: { type: "string" },
    "mcp-path": { type: "string" },
    ...WAIT_OPTIONS,
  },

  async run(context, args) {
    noPositionals("deploy", args.positionals);
    const request = deployRequest(context, args);
    const wait = waitSettings(args);

    const client = context.userClient();
    request.toolbox_id = await resolveToolboxId(client, request.toolbox_id);
    // One key per invocation: the function stores the first response under it, so a repeated
    // POST from a retrying proxy returns that response instead of deploying twice.
    const result = await client.instances.deploy(request, { idempotencyKey: randomUUID() });
    return settleAction(context, client, result, { expected: "running", done: "deployed", ...wait });
  },
};

/** Builds the request body from the flags. Required flags are checked here, values by the schema. */
export function deployRequest(context: CommandContext, args: ParsedArgs): InstanceDeployRequest {
  const values = args.values;
  const missing = ["name", "image", "port"].filter((flag) => values[flag] === undefined).map((flag) => `--${flag}`);
  if (missing.length > 0) throw new UsageError(`\`berth deploy\` needs ${missing.join(", ")}. Usage: berth deploy --name NAME --image IMAGE --port PORT`);

  const toolboxId = (values.toolbox as string | undefined) ?? context.settings().localToolboxId;
  if (toolboxId === undefined) {
    throw new UsageError("`berth deploy` needs --toolbox ID: BERTH_LOCAL_TOOLBOX_ID is not set. Run `berth toolboxes` to see your toolboxes.");
  }

  const request: InstanceDeployRequest = {
    toolbox_id: toolboxId,
    name: values.name as string,
    image: values.image as string,
    port: parseInteger("--port", values.port as string, 1, 65535),
  };
  const env = values.env as string[] | undefined;
  const secrets = values.secret as string[] | undefined;
  if (env !== undefined) request.env = parseAssignments("--env", env);
  if (secrets !== undefined) request.secrets = parseAssignments("--secret", secrets, context.io.env);
  if (values.command !== undefined) request.command = commandArguments(values.command as string);
  if (values["mcp-path"] !== undefined) request.mcp_path = values["mcp-path"] as string;
  return request;
}

function commandArguments(line: string): string[] {
  const words = splitCommandLine(line);
  if (words.length === 0) throw new UsageError("invalid --command: it is empty. Leave it out to run the image's own command.");
  return words;
}

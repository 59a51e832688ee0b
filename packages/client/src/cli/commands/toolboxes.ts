import { noPositionals } from "../args.ts";
import type { Command } from "../command.ts";
import { ExitCode } from "../exit.ts";
import { formatJson } from "../format.ts";
import { toolboxesTable } from "../render.ts";

export const toolboxesCommand: Command = {
  name: "toolboxes",
  summary: "list your toolboxes (hosts) with status and last heartbeat",
  usage: "berth toolboxes",
  optionHelp: [],
  options: {},

  async run(context, args) {
    noPositionals("toolboxes", args.positionals);
    const toolboxes = await context.userClient().toolboxes.list();

    if (context.json) context.print(formatJson({ toolboxes }));
    else if (toolboxes.length === 0) context.print("No toolboxes. Register a host with `POST /functions/v1/toolboxes`; `npm start` registers a local one.\n");
    else context.print(toolboxesTable(toolboxes, context.io.now()));
    return ExitCode.ok;
  },
};

import type { Command } from "../command.ts";
import { ExitCode } from "../exit.ts";
import { formatJson } from "../format.ts";
import { noPositionals } from "../args.ts";
import { instancesTable } from "../render.ts";
import { resolveToolboxId } from "../resolve.ts";

export const lsCommand: Command = {
  name: "ls",
  summary: "list your instances with status and endpoint",
  usage: "berth ls [--toolbox TOOLBOX]",
  optionHelp: [["--toolbox TOOLBOX", "only instances on this toolbox (id, id prefix or name)"]],
  options: { toolbox: { type: "string" } },

  async run(context, args) {
    noPositionals("ls", args.positionals);
    const toolbox = args.values.toolbox as string | undefined;

    const client = context.userClient();
    const toolboxId = toolbox === undefined ? undefined : await resolveToolboxId(client, toolbox);
    const instances = await client.instances.list({ toolboxId });

    if (context.json) context.print(formatJson({ instances }));
    else if (instances.length === 0) context.print(emptyMessage(toolbox));
    else context.print(instancesTable(instances, context.io.now()));
    return ExitCode.ok;
  },
};

function emptyMessage(toolbox: string | undefined): string {
  const scope = toolbox === undefined ? "" : ` on toolbox ${toolbox}`;
  return `No instances${scope}. Deploy one with \`berth deploy --name NAME --image IMAGE --port PORT\`.\n`;
}

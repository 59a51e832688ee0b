import { MAX_EVENT_LIMIT } from "../../tables.ts";
import { parseInteger } from "../args.ts";
import type { Command } from "../command.ts";
import { ExitCode, UsageError } from "../exit.ts";
import { formatJson } from "../format.ts";
import { eventsTable } from "../render.ts";
import { resolveInstanceId } from "../resolve.ts";

const DEFAULT_LIMIT = 20;

export const eventsCommand: Command = {
  name: "events",
  summary: "show the status history of one instance, or of all your instances",
  usage: "berth events [INSTANCE] [--limit N]",
  optionHelp: [
    ["INSTANCE", "instance id, id prefix or name; all your instances when left out"],
    ["--limit N", `number of most recent events, from 1 to ${MAX_EVENT_LIMIT} (default ${DEFAULT_LIMIT})`],
  ],
  options: { limit: { type: "string" } },

  async run(context, args) {
    if (args.positionals.length > 1) throw new UsageError(`\`berth events\` takes at most one instance, got: ${args.positionals.join(" ")}`);
    const rawLimit = args.values.limit as string | undefined;
    const limit = rawLimit === undefined ? DEFAULT_LIMIT : parseInteger("--limit", rawLimit, 1, MAX_EVENT_LIMIT);

    const client = context.userClient();
    const reference = args.positionals[0];
    const instanceId = reference === undefined ? undefined : await resolveInstanceId(client, reference);
    // instance_events has no function route, so this reads the table through the Data API.
    const events = await client.tables.events({ instanceId, limit });

    if (context.json) context.print(formatJson({ events }));
    else if (events.length === 0) context.print("No events.\n");
    else context.print(eventsTable(events, context.io.now()));
    return ExitCode.ok;
  },
};

import { INSTANCE_EVENTS_MAX_LIMIT, type InstanceEvent } from "@berth/shared";
import type { BerthClient } from "../../client.ts";
import { parseInteger } from "../args.ts";
import type { Command } from "../command.ts";
import { ExitCode, UsageError } from "../exit.ts";
import { formatJson } from "../format.ts";
import { eventsTable } from "../render.ts";
import { forInstance, resolveInstanceId } from "../resolve.ts";

const DEFAULT_LIMIT = 20;

/** Instances whose events are requested at the same time when no instance is given. */
const CONCURRENT_READS = 4;

export const eventsCommand: Command = {
  name: "events",
  summary: "show the status history of one instance, or of all your instances that are not removed",
  usage: "berth events [INSTANCE] [--limit N]",
  optionHelp: [
    ["INSTANCE", "instance id, id prefix or name; all instances that `berth ls` lists when left out"],
    ["--limit N", `number of most recent events, from 1 to ${INSTANCE_EVENTS_MAX_LIMIT} (default ${DEFAULT_LIMIT})`],
  ],
  options: { limit: { type: "string" } },

  async run(context, args) {
    if (args.positionals.length > 1) throw new UsageError(`\`berth events\` takes at most one instance, got: ${args.positionals.join(" ")}`);
    const rawLimit = args.values.limit as string | undefined;
    const limit = rawLimit === undefined ? DEFAULT_LIMIT : parseInteger("--limit", rawLimit, 1, INSTANCE_EVENTS_MAX_LIMIT);

    const client = context.userClient();
    const reference = args.positionals[0];
    const events = reference === undefined ? await readListedEvents(client, limit) : await readInstanceEvents(client, reference, limit);

    if (context.json) context.print(formatJson({ events }));
    else if (events.length === 0) context.print("No events.\n");
    else context.print(eventsTable(events, context.io.now()));
    return ExitCode.ok;
  },
};

async function readInstanceEvents(client: BerthClient, reference: string, limit: number): Promise<InstanceEvent[]> {
  const id = await resolveInstanceId(client, reference);
  return forInstance(id, () => client.instances.events(id, { limit }));
}

/**
 * Reads the newest `limit` events of every instance that `GET /instances` lists and keeps the
 * newest `limit` of them all, oldest first. Removed instances are not listed, so their
 * events are left out, but `berth events ID` still shows them.
 */
async function readListedEvents(client: BerthClient, limit: number): Promise<InstanceEvent[]> {
  const instances = await client.instances.list();

  const events: InstanceEvent[] = [];
  for (let start = 0; start < instances.length; start += CONCURRENT_READS) {
    const batch = instances.slice(start, start + CONCURRENT_READS);
    const pages = await Promise.all(batch.map((instance) => client.instances.events(instance.id, { limit })));
    events.push(...pages.flat());
  }

  return events.sort((a, b) => a.id - b.id).slice(-limit);
}

import { DTMA_LOGS_DEFAULT_TAIL, DTMA_LOGS_MAX_TAIL } from "@berth/shared";
import { parseInteger, singlePositional } from "../args.ts";
import type { Command } from "../command.ts";
import { ExitCode } from "../exit.ts";
import { formatJson } from "../format.ts";
import { forInstance, resolveInstanceId } from "../resolve.ts";

export const logsCommand: Command = {
  name: "logs",
  summary: "print the last log lines of an instance's container",
  usage: "berth logs INSTANCE [--tail N] [--timestamps]",
  optionHelp: [
    ["--tail N", `number of lines, from 1 to ${DTMA_LOGS_MAX_TAIL} (default ${DTMA_LOGS_DEFAULT_TAIL})`],
    ["--timestamps", "prefix each line with the time the container engine recorded for it"],
  ],
  options: { tail: { type: "string" }, timestamps: { type: "boolean", default: false } },

  async run(context, args) {
    const reference = singlePositional("logs", args.positionals, "instance");
    const rawTail = args.values.tail as string | undefined;
    const tail = rawTail === undefined ? undefined : parseInteger("--tail", rawTail, 1, DTMA_LOGS_MAX_TAIL);

    const client = context.userClient();
    const id = await resolveInstanceId(client, reference);
    const logs = await forInstance(id, () => client.instances.logs(id, { tail }));

    if (context.json) {
      context.print(formatJson(logs));
      return ExitCode.ok;
    }
    // Like `docker logs`, the container's stderr goes to stderr, so pipes see only stdout.
    for (const line of logs.lines) {
      const text = args.values.timestamps === true && line.time !== null ? `${line.time} ${line.text}` : line.text;
      const stream = line.stream === "stderr" ? context.io.stderr : context.io.stdout;
      stream.write(`${text}\n`);
    }
    return ExitCode.ok;
  },
};

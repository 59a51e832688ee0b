import type { DesiredState } from "@berth/shared";
import type { InstanceResult } from "../../instances.ts";
import type { BerthClient } from "../../client.ts";
import { singlePositional } from "../args.ts";
import type { Command } from "../command.ts";
import { forInstance, resolveInstanceId } from "../resolve.ts";
import { settleAction } from "../settle.ts";
import { WAIT_OPTION_HELP, WAIT_OPTIONS, waitSettings } from "./wait-flags.ts";

interface LifecycleAction {
  name: string;
  summary: string;
  expected: DesiredState;
  done: string;
  call: (client: BerthClient, id: string) => Promise<InstanceResult>;
}

/** Builds a command that changes one instance's intent and waits for it to settle. */
function lifecycleCommand(action: LifecycleAction): Command {
  return {
    name: action.name,
    summary: action.summary,
    usage: `berth ${action.name} INSTANCE [--no-wait] [--timeout SECONDS]`,
    optionHelp: [["INSTANCE", "instance id, id prefix (4 or more characters) or name"], ...WAIT_OPTION_HELP],
    options: { ...WAIT_OPTIONS },

    async run(context, args) {
      const reference = singlePositional(action.name, args.positionals, "instance");
      const wait = waitSettings(args);

      const client = context.userClient();
      const id = await resolveInstanceId(client, reference);
      const result = await forInstance(id, () => action.call(client, id));
      return settleAction(context, client, result, { expected: action.expected, done: action.done, ...wait });
    },
  };
}

export const startCommand = lifecycleCommand({
  name: "start",
  summary: "start a stopped instance",
  expected: "running",
  done: "started",
  call: (client, id) => client.instances.start(id),
});

export const stopCommand = lifecycleCommand({
  name: "stop",
  summary: "stop an instance; its container is kept",
  expected: "stopped",
  done: "stopped",
  call: (client, id) => client.instances.stop(id),
});

export const restartCommand = lifecycleCommand({
  name: "restart",
  summary: "restart an instance's container",
  expected: "running",
  done: "restarted",
  call: (client, id) => client.instances.restart(id),
});

export const rmCommand = lifecycleCommand({
  name: "rm",
  summary: "remove an instance and its container",
  expected: "removed",
  done: "removed",
  call: (client, id) => client.instances.remove(id),
});

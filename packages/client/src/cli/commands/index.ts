import type { Command } from "../command.ts";
import { deployCommand } from "./deploy.ts";
import { eventsCommand } from "./events.ts";
import { restartCommand, rmCommand, startCommand, stopCommand } from "./lifecycle.ts";
import { logsCommand } from "./logs.ts";
import { lsCommand } from "./ls.ts";
import { reconcileCommand } from "./reconcile.ts";
import { toolboxesCommand } from "./toolboxes.ts";

/** Every command except `help`, in the order `berth help` lists them. */
export const COMMANDS: readonly Command[] = [
  lsCommand,
  deployCommand,
  startCommand,
  stopCommand,
  restartCommand,
  rmCommand,
  logsCommand,
  eventsCommand,
  toolboxesCommand,
  reconcileCommand,
];

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((command) => command.name === name);
}

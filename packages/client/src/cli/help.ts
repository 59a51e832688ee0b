import { COMMON_OPTION_HELP, type Command } from "./command.ts";
import { COMMANDS } from "./commands/index.ts";

const SETTINGS_HELP = `settings:
  berth takes every setting from the first of these sources that exists: the file given
  with --config, the environment when SUPABASE_URL is set there, and .berth/dev.env in the
  current directory or else the repository root, which \`npm start\` writes.
  \`set -a; . .berth/dev.env; set +a\` loads that file into the environment.
  Every command needs SUPABASE_URL. \`berth reconcile\` needs SUPABASE_SERVICE_ROLE_KEY, and
  the other commands need SUPABASE_ANON_KEY and the user's access token: BERTH_USER_JWT, or
  BERTH_DEV_USER_JWT when BERTH_USER_JWT is unset or empty.
  BERTH_LOCAL_TOOLBOX_ID is the default of \`deploy --toolbox\`.`;

const EXIT_CODE_HELP = `exit codes:
  0  the command succeeded
  1  the action failed, timed out, or the instance ended in another state than requested
  2  usage error: invalid arguments, settings or values
  3  the instance or toolbox was not found`;

/** Returns the overview printed by `berth help`. */
export function generalHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length), "help".length) + 2;
  const commandLines = [...COMMANDS.map((command) => [command.name, command.summary]), ["help", "show this help, or a command's options with `berth help COMMAND`"]]
    .map(([name, summary]) => `  ${(name as string).padEnd(width)}${summary}`)
    .join("\n");

  return [
    "berth: deploy and manage MCP servers on your Berth toolboxes",
    "",
    "usage: berth COMMAND [options]",
    "",
    "commands:",
    commandLines,
    "",
    "options of every command:",
    optionLines(COMMON_OPTION_HELP),
    "",
    SETTINGS_HELP,
    "",
    EXIT_CODE_HELP,
    "",
  ].join("\n");
}

/** Returns the help of one command: synopsis, summary, its options and the common ones. */
export function commandHelp(command: Command): string {
  const sections = [`usage: ${command.usage}`, "", `${command.summary}.`, ""];
  if (command.optionHelp.length > 0) sections.push("options:", optionLines(command.optionHelp), "");
  sections.push("options of every command:", optionLines(COMMON_OPTION_HELP), "", EXIT_CODE_HELP, "");
  return sections.join("\n");
}

function optionLines(options: Array<[string, string]>): string {
  const width = Math.max(...options.map(([flag]) => flag.length)) + 2;
  return options.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`).join("\n");
}

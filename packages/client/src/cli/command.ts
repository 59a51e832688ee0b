import type { OptionsConfig, ParsedArgs } from "./args.ts";
import type { CommandContext } from "./context.ts";
import type { ExitCode } from "./exit.ts";

/** One `berth` subcommand: its help text, its options and what it runs. */
export interface Command {
  name: string;
  /** One line for the command list of `berth help`. */
  summary: string;
  /** The synopsis, such as `berth logs INSTANCE [--tail N]`. */
  usage: string;
  /** Option lines for `berth help NAME`: the flag with its value, and what it sets. */
  optionHelp: Array<[string, string]>;
  options: OptionsConfig;
  run(context: CommandContext, args: ParsedArgs): Promise<ExitCode>;
}

/** Help lines of the options every command accepts. */
export const COMMON_OPTION_HELP: Array<[string, string]> = [
  ["--json", "print the result as JSON on stdout, for scripts"],
  ["--config FILE", "read the settings from FILE (KEY=value lines like .berth/dev.env) instead"],
  ["-h, --help", "show this help"],
];

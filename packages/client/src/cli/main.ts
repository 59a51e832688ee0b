import { parseCommandArgs } from "./args.ts";
import { findCommand } from "./commands/index.ts";
import { createCommandContext, type CliIo, type CommandContext } from "./context.ts";
import { ExitCode, formatError, renderError, UsageError } from "./exit.ts";
import { commandHelp, generalHelp } from "./help.ts";

const PROCESS_IO: CliIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  now: () => new Date(),
};

/** Runs `berth` with the arguments after the program name and returns the exit code. */
export async function main(argv: string[], io: CliIo = PROCESS_IO): Promise<ExitCode> {
  const [name, ...rest] = argv;
  const json = rest.includes("--json");

  try {
    if (name === undefined) {
      io.stderr.write(generalHelp());
      return ExitCode.usage;
    }
    if (name === "help" || name === "--help" || name === "-h") return printHelp(io, rest);

    const command = findCommand(name);
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(name)}. Run \`berth help\` for the list of commands.`);

    const args = parseCommandArgs(name, rest, command.options);
    if (args.values.help === true) {
      io.stdout.write(commandHelp(command));
      return ExitCode.ok;
    }

    const context = createCommandContext(io, { json: args.values.json === true, configFile: args.values.config as string | undefined });
    return await runCommand(context, () => command.run(context, args));
  } catch (error) {
    const rendered = renderError(error);
    io.stderr.write(formatError(rendered, json));
    return rendered.exitCode;
  }
}

/** Runs a command and reports its error with the control plane's URL, when the settings loaded. */
async function runCommand(context: CommandContext, run: () => Promise<ExitCode>): Promise<ExitCode> {
  try {
    return await run();
  } catch (error) {
    const rendered = renderError(error, { url: urlIfLoaded(context) });
    context.io.stderr.write(formatError(rendered, context.json));
    return rendered.exitCode;
  }
}

function urlIfLoaded(context: CommandContext): string | undefined {
  try {
    return context.settings().url;
  } catch {
    return undefined;
  }
}

function printHelp(io: CliIo, topics: string[]): ExitCode {
  const topic = topics.find((argument) => !argument.startsWith("-"));
  if (topic === undefined) {
    io.stdout.write(generalHelp());
    return ExitCode.ok;
  }

  const command = findCommand(topic);
  if (!command) throw new UsageError(`unknown command ${JSON.stringify(topic)}. Run \`berth help\` for the list of commands.`);
  io.stdout.write(commandHelp(command));
  return ExitCode.ok;
}

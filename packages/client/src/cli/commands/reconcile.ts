import { noPositionals } from "../args.ts";
import type { Command } from "../command.ts";
import { ExitCode } from "../exit.ts";
import { formatJson } from "../format.ts";
import { reconcileSummary } from "../render.ts";

export const reconcileCommand: Command = {
  name: "reconcile",
  summary: "run one reconciler pass now (needs SUPABASE_SERVICE_ROLE_KEY)",
  usage: "berth reconcile",
  optionHelp: [],
  options: {},

  async run(context, args) {
    noPositionals("reconcile", args.positionals);
    const result = await context.serviceClient().reconcile({ source: "berth-cli" });

    context.print(context.json ? formatJson(result) : reconcileSummary(result, context.io.now()));
    // A skipped pass is not a failure: another pass holds the lease and is doing the work.
    if (result.status === "succeeded" || result.status === "skipped") return ExitCode.ok;
    return ExitCode.failed;
  },
};

import type { DesiredState, InstanceResponse } from "@berth/shared";
import type { BerthClient } from "../client.ts";
import type { InstanceResult } from "../instances.ts";
import type { CommandContext } from "./context.ts";
import { CliError, ExitCode } from "./exit.ts";
import { compactDuration, formatJson, shortId } from "./format.ts";
import { instanceDetails, instanceLabel, statusWithReason } from "./render.ts";
import { startSpinner } from "./spinner.ts";
import { isSettled, waitUntilSettled, type WaitOutcome } from "./wait.ts";

export interface SettleOptions {
  /** The status that means the action succeeded. */
  expected: DesiredState;
  /** Past tense of the action for messages: "deployed", "stopped". */
  done: string;
  wait: boolean;
  timeoutMs: number;
  /** Pause between two reads of the instance; the waiter's default when absent. */
  pollIntervalMs?: number;
}

/**
 * Finishes a command that changed an instance: waits until it settles unless --no-wait was
 * given, prints the outcome and returns the exit code. An instance that ends in another state
 * than `expected`, or does not settle before the timeout, is a failed action.
 */
export async function settleAction(context: CommandContext, client: BerthClient, result: InstanceResult, options: SettleOptions): Promise<ExitCode> {
  if (!options.wait) return report(context, result.instance, result.inProgress, options);

  const spinner = startSpinner(context.io.stderr, progressText(result.instance, options));
  let outcome: WaitOutcome;
  try {
    outcome = await waitUntilSettled(client.instances, result.instance, {
      timeoutMs: options.timeoutMs,
      intervalMs: options.pollIntervalMs,
      onPoll: (instance) => spinner.update(progressText(instance, options)),
    });
  } finally {
    spinner.stop();
  }

  if (outcome.kind === "gone") return reportGone(context, result.instance, options);
  if (outcome.kind === "timed_out") throw timedOut(outcome.instance, options);
  return report(context, outcome.instance, false, options);
}

function report(context: CommandContext, instance: InstanceResponse, inProgress: boolean, options: SettleOptions): ExitCode {
  const pending = inProgress || !isSettled(instance);
  if (context.json) {
    context.print(formatJson({ instance, in_progress: pending }));
  } else if (pending) {
    context.print(`${instanceLabel(instance)} accepted, now ${statusWithReason(instance)}. The control plane continues in the background.\n`);
    context.print(instanceDetails(instance, context.io.now()));
  } else if (instance.status === options.expected) {
    context.print(`${options.done} ${instanceLabel(instance)}: ${instance.status}\n`);
    context.print(instanceDetails(instance, context.io.now()));
  } else {
    context.print(instanceDetails(instance, context.io.now()));
  }

  if (pending || instance.status === options.expected) return ExitCode.ok;
  throw wrongState(instance, options);
}

/** Describes an instance that settled in another state than the action asked for. */
function wrongState(instance: InstanceResponse, options: SettleOptions): CliError {
  const reason = instance.status_reason ? `: ${instance.status_reason}` : "";
  const code = instance.status_reason_code ? ` (reason ${instance.status_reason_code})` : "";
  return new CliError(
    `instance ${instanceLabel(instance)} is ${instance.status}${code}, not ${options.expected}${reason}. Run \`berth events ${shortId(instance.id)}\` for its history.`,
    ExitCode.failed,
    instance.status === "failed" ? "instance_failed" : "unexpected_state",
  );
}

function reportGone(context: CommandContext, instance: InstanceResponse, options: SettleOptions): ExitCode {
  if (options.expected !== "removed") {
    throw new CliError(`instance ${instanceLabel(instance)} disappeared while waiting for it to become ${options.expected}. Run \`berth ls\` to see your instances.`, ExitCode.failed, "instance_not_found");
  }
  if (context.json) context.print(formatJson({ instance: { ...instance, status: "removed" }, in_progress: false }));
  else context.print(`${options.done} ${instanceLabel(instance)}\n`);
  return ExitCode.ok;
}

function timedOut(instance: InstanceResponse, options: SettleOptions): CliError {
  const seconds = compactDuration(Math.round(options.timeoutMs / 1000));
  return new CliError(
    `timed out after ${seconds} waiting for instance ${instanceLabel(instance)} to become ${options.expected}; it is ${statusWithReason(instance)}. ` +
      `The control plane keeps working on it: check with \`berth ls\` or \`berth events ${shortId(instance.id)}\`, or wait longer with --timeout.`,
    ExitCode.failed,
    "timed_out",
  );
}

function progressText(instance: InstanceResponse, options: SettleOptions): string {
  return `waiting for ${instanceLabel(instance)} to become ${options.expected} (now ${instance.status})`;
}

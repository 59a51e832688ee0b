import type { InstanceResponse, ToolboxResponse } from "@berth/shared";
import type { BerthClient } from "../client.ts";
import { BerthError } from "../errors.ts";
import { CliError, ExitCode, UsageError } from "./exit.ts";
import { shortId } from "./format.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Shortest id prefix accepted, so a stray digit does not pick an instance by accident. */
export const MIN_PREFIX_LENGTH = 4;

const INSTANCE_HINT = "Run `berth ls` to see your instances.";

/**
 * Resolves what the user typed to an instance id: a full UUID as it is, otherwise an exact
 * instance name or an id prefix of at least MIN_PREFIX_LENGTH characters among the instances
 * `GET /instances` lists (removed ones are not listed).
 */
export async function resolveInstanceId(client: BerthClient, reference: string): Promise<string> {
  if (UUID.test(reference)) return reference.toLowerCase();

  const instances = await client.instances.list();
  const byName = instances.filter((instance) => instance.name === reference);
  const isPrefix = reference.length >= MIN_PREFIX_LENGTH && /^[0-9a-f-]+$/i.test(reference);
  const byPrefix = isPrefix ? instances.filter((instance) => instance.id.startsWith(reference.toLowerCase())) : [];
  const matches = [...new Map([...byName, ...byPrefix].map((instance) => [instance.id, instance])).values()];

  if (matches.length === 1) return (matches[0] as InstanceResponse).id;
  if (matches.length === 0) {
    throw notFoundError("instance_not_found", `no instance matches ${JSON.stringify(reference)} by name or id`, INSTANCE_HINT);
  }
  const candidates = matches.map((instance) => `${instance.name} (${instance.id}, toolbox ${shortId(instance.toolbox_id)})`).join(", ");
  throw new UsageError(`${JSON.stringify(reference)} matches ${matches.length} instances: ${candidates}. Pass the full id.`);
}

/**
 * Runs `action` and rewrites a not-found error into the message `berth` uses for a missing instance, which
 * names the id the user passed instead of the server's wording.
 */
export async function forInstance<T>(id: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof BerthError && (error.code === "instance_not_found" || error.code === "not_found")) {
      throw notFoundError(error.code, `instance ${shortId(id)}… not found`, INSTANCE_HINT, `instance ${id} not found`);
    }
    throw error;
  }
}

/**
 * Resolves a toolbox reference the same way as an instance reference: a full UUID as it is,
 * otherwise an exact name or an id prefix among the toolboxes `GET /toolboxes` lists.
 */
export async function resolveToolboxId(client: BerthClient, reference: string): Promise<string> {
  if (UUID.test(reference)) return reference.toLowerCase();

  const toolboxes = await client.toolboxes.list();
  const isPrefix = reference.length >= MIN_PREFIX_LENGTH && /^[0-9a-f-]+$/i.test(reference);
  const matches = toolboxes.filter((toolbox) => toolbox.name === reference || (isPrefix && toolbox.id.startsWith(reference.toLowerCase())));
  const live = matches.filter((toolbox) => toolbox.status !== "decommissioned");
  const candidates = live.length > 0 ? live : matches;

  if (candidates.length === 1) return (candidates[0] as ToolboxResponse).id;
  if (candidates.length === 0) {
    throw notFoundError("toolbox_not_found", `no toolbox matches ${JSON.stringify(reference)} by name or id`, "Run `berth toolboxes` to see your toolboxes.");
  }
  const names = candidates.map((toolbox) => `${toolbox.name} (${toolbox.id}, ${toolbox.status})`).join(", ");
  throw new UsageError(`${JSON.stringify(reference)} matches ${candidates.length} toolboxes: ${names}. Pass the full id.`);
}

/**
 * Builds the error of a missing instance or toolbox. The terminal message names the code, while
 * the `--json` message leaves it to the `code` field and uses `jsonDescription`, which may
 * spell out an id that the terminal message shortens.
 */
function notFoundError(code: string, description: string, hint: string, jsonDescription = description): CliError {
  return new CliError(`${description} (code ${code}). ${hint}`, ExitCode.notFound, code, `${jsonDescription}. ${hint}`);
}

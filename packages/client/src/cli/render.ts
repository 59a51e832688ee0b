import type { InstanceEvent, InstanceResponse, ReconcileResponse, ToolboxResponse } from "@berth/shared";
import { formatTable, relativeTime, shortId } from "./format.ts";

/** Formats instances for `berth ls`. STATUS carries the reason code when there is one. */
export function instancesTable(instances: InstanceResponse[], now: Date): string {
  const rows = instances.map((instance) => [
    shortId(instance.id),
    instance.name,
    statusWithReason(instance),
    instance.image,
    instance.endpoint ?? "-",
    shortId(instance.toolbox_id),
    relativeTime(instance.status_changed_at, now),
  ]);
  return formatTable(["ID", "NAME", "STATUS", "IMAGE", "ENDPOINT", "TOOLBOX", "CHANGED"], rows);
}

export function toolboxesTable(toolboxes: ToolboxResponse[], now: Date): string {
  const rows = toolboxes.map((toolbox) => [
    shortId(toolbox.id),
    toolbox.name,
    toolbox.status,
    toolbox.agent_url,
    toolbox.agent_version ?? "-",
    relativeTime(toolbox.last_heartbeat_at, now),
    relativeTime(toolbox.created_at, now),
  ]);
  return formatTable(["ID", "NAME", "STATUS", "AGENT URL", "AGENT VERSION", "LAST HEARTBEAT", "CREATED"], rows);
}

/** Formats events oldest first, the order a history is read in. */
export function eventsTable(events: InstanceEvent[], now: Date): string {
  const rows = [...events]
    .sort((a, b) => a.id - b.id)
    .map((event) => [
      relativeTime(event.created_at, now),
      shortId(event.instance_id),
      `${event.from_status ?? "(new)"} → ${event.to_status}`,
      event.actor,
      event.reason_code ?? "-",
      event.message ?? "",
    ]);
  return formatTable(["TIME", "INSTANCE", "STATUS", "ACTOR", "REASON", "MESSAGE"], rows);
}

export function statusWithReason(instance: Pick<InstanceResponse, "status" | "status_reason_code">): string {
  return instance.status_reason_code ? `${instance.status} (${instance.status_reason_code})` : instance.status;
}

/** Names an instance in messages: `my-server (3f2a9c1e)`. */
export function instanceLabel(instance: Pick<InstanceResponse, "id" | "name">): string {
  return `${instance.name} (${shortId(instance.id)})`;
}

/**
 * Describes one instance after an action, one `key: value` line each. Secret values never
 * reach the client, so only their names are listed.
 */
export function instanceDetails(instance: InstanceResponse, now: Date): string {
  const lines: Array<[string, string]> = [
    ["id", instance.id],
    ["name", instance.name],
    ["status", statusWithReason(instance)],
    ["desired", instance.desired_state],
    ["image", instance.image],
    ["endpoint", instance.endpoint ?? "-"],
    ["toolbox", instance.toolbox_id],
    ["changed", relativeTime(instance.status_changed_at, now)],
  ];
  if (instance.status_reason) lines.push(["reason", instance.status_reason]);
  if (instance.secret_names.length > 0) lines.push(["secrets", instance.secret_names.join(", ")]);
  return keyValueLines(lines);
}

/** Summarises a reconciler pass. */
export function reconcileSummary(result: ReconcileResponse, now: Date): string {
  if (result.status === "skipped") {
    return `reconcile skipped: pass ${result.holder} holds the run lease until ${relativeTime(result.lease_expires_at, now)}.\n`;
  }
  return keyValueLines([
    ["status", result.complete ? result.status : `${result.status} (stopped at its time budget, more toolboxes left)`],
    ["run", result.run_id],
    ["duration", `${result.duration_ms} ms`],
    ["toolboxes checked", String(result.toolboxes_checked)],
    ["toolboxes unreachable", String(result.toolboxes_unreachable)],
    ["instances checked", String(result.instances_checked)],
    ["instances skipped", String(result.instances_skipped)],
    ["instances marked unknown", String(result.instances_marked_unknown)],
    ["drift found", String(result.drift_found)],
    ["repairs made", String(result.repairs_made)],
    ["orphans removed", String(result.orphans_removed)],
    ["failures", String(result.failures)],
  ]);
}

function keyValueLines(lines: Array<[string, string]>): string {
  const width = Math.max(...lines.map(([key]) => key.length)) + 1;
  return `${lines.map(([key, value]) => `${`${key}:`.padEnd(width)} ${value}`).join("\n")}\n`;
}

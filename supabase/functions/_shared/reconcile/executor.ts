import type { InventoryResponse } from "@berth/shared";
import type { AgentClientFactory } from "../agents.ts";
import type { DtmaClient } from "../dtma-client.ts";
import type { ToolboxRow } from "../registry.ts";

/**
 * Bounded concurrency for the agent calls of a pass. Every agent call carries the client's own
 * timeout (BERTH_AGENT_TIMEOUT_MS), so one slow host delays its batch by at most that much.
 */

/**
 * Runs `task` over `items` with at most `limit` tasks in flight and returns the results in the
 * order of `items`. A rejected task rejects the whole call; callers catch inside `task`.
 */
export async function mapWithConcurrency<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;

  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await task(items[index]!);
    }
  };

  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker);
  await Promise.all(workers);
  return results;
}

/** The inventory of one toolbox, or why it could not be fetched. */
export type FetchedInventory =
  | { toolbox: ToolboxRow; reachable: true; inventory: InventoryResponse }
  | { toolbox: ToolboxRow; reachable: false; error: string };

/** Fetches each toolbox's inventory once, with at most `concurrency` requests in flight. */
export function fetchInventories(
  toolboxes: readonly ToolboxRow[],
  clientFor: (toolbox: ToolboxRow) => Promise<DtmaClient>,
  concurrency: number,
): Promise<FetchedInventory[]> {
  return mapWithConcurrency(toolboxes, concurrency, async (toolbox): Promise<FetchedInventory> => {
    try {
      const client = await clientFor(toolbox);
      return { toolbox, reachable: true, inventory: await client.inventory() };
    } catch (error) {
      return { toolbox, reachable: false, error: error instanceof Error ? error.message : String(error) };
    }
  });
}

/**
 * Wraps an agent client factory so a toolbox's token is derived once per token version and
 * URL, not on every pass. The cache lives as long as the function instance.
 */
export function cachedClients(factory: AgentClientFactory): (toolbox: ToolboxRow) => Promise<DtmaClient> {
  const clients = new Map<string, Promise<DtmaClient>>();

  return (toolbox) => {
    const key = `${toolbox.id}|${toolbox.token_version}|${toolbox.agent_url}`;
    let client = clients.get(key);
    if (client === undefined) {
      client = factory(toolbox);
      clients.set(key, client);
      client.catch(() => clients.delete(key));
    }
    return client;
  };
}

import type { HostResolver } from "./agent-address.ts";
import { deriveAgentToken } from "./agent-token.ts";
import { createDtmaClient, type DtmaClient } from "./dtma-client.ts";
import type { ToolboxRow } from "./registry.ts";

/**
 * Returns a client for the agent of a toolbox. Handlers and the reconciler take this as a
 * dependency, so tests can hand in a client for a fake agent.
 */
export type AgentClientFactory = (toolbox: Pick<ToolboxRow, "id" | "agent_url" | "token_version">) => Promise<DtmaClient>;

export interface AgentClientFactoryOptions {
  /** BERTH_AGENT_TOKEN_SECRET, from which every toolbox's token is derived. */
  tokenSecret: string;
  /** Budget of one agent call (BERTH_AGENT_TIMEOUT_MS). */
  timeoutMs: number;
  /** BERTH_ALLOW_PRIVATE_AGENT_URLS: whether agents may be at loopback, private or link-local addresses. */
  allowPrivateAddresses: boolean;
  /** Resolves agent host names for the address check; the system resolver when absent. */
  resolveHost?: HostResolver;
  fetch?: typeof fetch;
}

/** Creates the factory that derives a toolbox's current token and points a client at its agent. */
export function createAgentClientFactory(options: AgentClientFactoryOptions): AgentClientFactory {
  return async (toolbox) => {
    const token = await deriveAgentToken(options.tokenSecret, toolbox.id, toolbox.token_version);
    return createDtmaClient({
      baseUrl: toolbox.agent_url,
      token,
      timeoutMs: options.timeoutMs,
      allowPrivateAddresses: options.allowPrivateAddresses,
      resolveHost: options.resolveHost,
      fetch: options.fetch,
    });
  };
}

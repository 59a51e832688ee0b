import packageJson from "../package.json" with { type: "json" };

/** The agent's version, reported by `/healthz`, the inventory and heartbeats. */
export const AGENT_VERSION: string = packageJson.version;

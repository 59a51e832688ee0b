export { createBerthClient, type BerthClient } from "./client.ts";
export { BerthError, CLIENT_ERROR_CODES } from "./errors.ts";
export type { DeployOptions, InstanceAction, InstanceEventsOptions, InstanceResult, InstancesApi } from "./instances.ts";
export type { ToolboxesApi } from "./toolboxes.ts";
export {
  DEFAULT_EVENT_LIMIT,
  MAX_EVENT_LIMIT,
  type EventRowsQuery,
  type InstanceEventRow,
  type InstanceRow,
  type InstanceRowsQuery,
  type TablesApi,
  type ToolboxRow,
} from "./tables.ts";
export type { InstanceChange, Unsubscribe, WatchOptions, WatchStatus } from "./watch.ts";
export type { Database, Json, Tables, Enums } from "./database.types.ts";

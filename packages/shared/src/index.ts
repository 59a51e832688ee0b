export * from "./errors.ts";
export * from "./labels.ts";
export * from "./dtma.ts";
export * from "./states.ts";
export * from "./sqlstate.ts";
export * from "./reconcile.ts";
export * from "./api.ts";

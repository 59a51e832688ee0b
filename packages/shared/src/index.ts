export * from "./errors.ts";
export * from "./labels.ts";
export * from "./dtma.ts";

#!/usr/bin/env node
// Node 20 cannot run TypeScript, so the agent's sources are loaded through tsx's ESM loader.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");

#!/usr/bin/env node
// Node 20 cannot run TypeScript, so the agent's sources are loaded through tsx's ESM loader.
// The loader runs in this process, so SIGTERM sent to this process reaches the agent's handler.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");

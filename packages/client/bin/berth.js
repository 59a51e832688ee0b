#!/usr/bin/env node
// Node 20 cannot run TypeScript, so the CLI's sources are loaded through tsx's ESM loader.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));

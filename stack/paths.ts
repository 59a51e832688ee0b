import path from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of the repository root, whatever the working directory. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export const SUPABASE_DIR = path.join(REPO_ROOT, "supabase");
export const MIGRATIONS_DIR = path.join(SUPABASE_DIR, "migrations");
export const FUNCTIONS_DIR = path.join(SUPABASE_DIR, "functions");

/** Path of an executable that `npm ci` installed into node_modules/.bin. */
export function npmBin(name: string): string {
  return path.join(REPO_ROOT, "node_modules", ".bin", name);
}

// `npm run dev:token -- <email>`: creates a user of the local stack when it does not exist and
// prints an access token for it, so a second user can be tried against the first one's data.
import path from "node:path";
import { ensureLocalUser } from "../stack/dev-stack.ts";
import { mintUserJwt } from "../stack/jwt.ts";
import { REPO_ROOT } from "../stack/paths.ts";
import { readEnvFile } from "../stack/walkthrough.ts";

const ENV_FILE = path.join(REPO_ROOT, ".berth", "dev.env");
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+$/;

async function main(): Promise<void> {
  const email = process.argv[2];
  if (email === undefined || !EMAIL_PATTERN.test(email)) {
    process.stderr.write("usage: npm run dev:token -- <email>   (for example: npm run dev:token -- bob@example.test)\n");
    process.exit(2);
  }

  const env = await readEnvFile(ENV_FILE).catch(() => {
    throw new Error(`cannot read ${path.relative(process.cwd(), ENV_FILE)}: run \`npm start\` first`);
  });
  const databaseUrl = env.SUPABASE_DB_URL;
  if (!databaseUrl) throw new Error(`SUPABASE_DB_URL is missing from ${ENV_FILE}: restart \`npm start\``);

  const userId = await ensureLocalUser(databaseUrl, email);
  process.stdout.write(`${await mintUserJwt(userId, email)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`dev:token failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

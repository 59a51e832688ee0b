// `npm run image -- <name>`: builds one of the repository's images into the local engine when
// it is missing and prints its reference, for deploying by hand.
import { ensureImage, IMAGE_PORTS, type ImageName } from "../stack/images.ts";

const NAMES = Object.keys(IMAGE_PORTS) as ImageName[];

async function main(): Promise<void> {
  const name = process.argv[2] as ImageName | undefined;
  if (name === undefined || !NAMES.includes(name)) {
    process.stderr.write(`usage: npm run image -- <${NAMES.join(" | ")}>\n`);
    process.exit(2);
  }

  const dockerHost = process.env.DOCKER_HOST;
  if (!dockerHost) {
    throw new Error("DOCKER_HOST is not set: load the keys of the running stack first (set -a; . .berth/dev.env; set +a)");
  }
  process.stdout.write(`${await ensureImage(dockerHost, name, { log: (line) => process.stderr.write(`${line}\n`) })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`image build failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

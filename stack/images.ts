import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import { createDockerClient } from "./engine-client.ts";
import { withFileLock } from "./images-lock.ts";
import { installDependencies } from "./images-npm.ts";
import { copyAppSources, createNodeRootfs, IMAGE_NODE_PATH, packRootfs } from "./images-rootfs.ts";
import { REPO_ROOT } from "./paths.ts";

export type ImageName = "http-echo" | "mcp-everything";

/** Container port of http-echo; the PORT environment variable overrides it. */
export const HTTP_ECHO_PORT = 8080;
/** Container port of mcp-everything; the PORT environment variable overrides it. */
export const MCP_EVERYTHING_PORT = 8080;
/** Path of mcp-everything's MCP streamable HTTP endpoint. */
export const MCP_EVERYTHING_PATH = "/mcp";

export const IMAGE_PORTS: Readonly<Record<ImageName, number>> = {
  "http-echo": HTTP_ECHO_PORT,
  "mcp-everything": MCP_EVERYTHING_PORT,
};

/** Repository prefix of every image built here; `localhost/` keeps pulls from going to a registry. */
export const IMAGE_REPOSITORY_PREFIX = "localhost/berth";

export const IMAGES_DIR = path.join(REPO_ROOT, "images");

interface ImageRecipe {
  /** Whether `npm ci` installs the folder's package-lock.json into /app. */
  installDependencies: boolean;
  cmd: string[];
}

const RECIPES: Readonly<Record<ImageName, ImageRecipe>> = {
  "http-echo": {
    installDependencies: false,
    cmd: [IMAGE_NODE_PATH, "/app/server.mjs"],
  },
  "mcp-everything": {
    installDependencies: true,
    cmd: [
      IMAGE_NODE_PATH,
      "--import",
      "/app/exit-on-sigterm.mjs",
      "/app/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
      "streamableHttp",
    ],
  },
};

/** The files whose content decides how an image is built, so a change to them changes the tag. */
const RECIPE_FILES = ["stack/images.ts", "stack/images-rootfs.ts", "stack/images-npm.ts"];

const BUILD_LOCK_TIMEOUT_MS = 300_000;

export interface EnsureImageOptions {
  log?: (line: string) => void;
}

/**
 * Returns the reference of a local image built from images/<name>, building and loading it
 * through the Engine API first when the engine lacks it. The tag is a hash of the sources and
 * of the build recipe, so an image is reused exactly while neither has changed.
 */
export async function ensureImage(dockerHost: string, name: ImageName, options: EnsureImageOptions = {}): Promise<string> {
  const log = options.log ?? (() => {});
  const docker = createDockerClient(dockerHost);
  const reference = `${IMAGE_REPOSITORY_PREFIX}/${name}:${await sourceHash(name)}`;
  if (await imageExists(docker, reference)) return reference;

  const lockPath = path.join(os.tmpdir(), `berth-image-${name}.lock`);
  return withFileLock(lockPath, BUILD_LOCK_TIMEOUT_MS, async () => {
    // Another process may have built it while this one waited for the lock.
    if (await imageExists(docker, reference)) return reference;

    const started = Date.now();
    await buildImage(docker, name, reference);
    log(`built ${reference} in ${Date.now() - started} ms`);
    await removeOtherTags(docker, name, reference, log);
    return reference;
  });
}

/** Hashes the image's source files, the recipe files, and the Node version and architecture. */
async function sourceHash(name: ImageName): Promise<string> {
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ name, node: process.version, arch: process.arch, recipe: RECIPES[name] }));

  const sourceFiles = (await listFiles(path.join(IMAGES_DIR, name))).map((file) => path.join("images", name, file));
  for (const file of [...RECIPE_FILES, ...sourceFiles]) {
    hash.update(`\0${file}\0`);
    hash.update(await fs.readFile(path.join(REPO_ROOT, file)));
  }
  return hash.digest("hex").slice(0, 16);
}

/** Lists the files under a folder as sorted relative paths, leaving out node_modules. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .filter((file) => !file.split(path.sep).includes("node_modules"))
    .sort();
}

async function imageExists(docker: Docker, reference: string): Promise<boolean> {
  try {
    await docker.getImage(reference).inspect();
    return true;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return false;
    throw error;
  }
}

async function buildImage(docker: Docker, name: ImageName, reference: string): Promise<void> {
  const recipe = RECIPES[name];
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), `berth-image-${name}-`));

  try {
    const rootfs = path.join(workDir, "rootfs");
    await createNodeRootfs(rootfs);
    await copyAppSources(path.join(IMAGES_DIR, name), path.join(rootfs, "app"));
    if (recipe.installDependencies) await installDependencies(path.join(rootfs, "app"));

    const tarPath = path.join(workDir, "rootfs.tar");
    await packRootfs(rootfs, tarPath);
    await importImage(docker, tarPath, reference, imageChanges(name, recipe));
  } finally {
    await fs.rm(workDir, { recursive: true, force: true });
  }
}

/** Dockerfile instructions applied on import; `POST /images/create` accepts this subset. */
function imageChanges(name: ImageName, recipe: ImageRecipe): string[] {
  const port = IMAGE_PORTS[name];
  return [
    `CMD ${JSON.stringify(recipe.cmd)}`,
    "ENV PATH=/usr/local/bin:/usr/bin:/bin",
    "ENV NODE_ENV=production",
    `ENV PORT=${port}`,
    "WORKDIR /app",
    `EXPOSE ${port}/tcp`,
  ];
}

/**
 * Loads a rootfs tar as an image with `POST /images/create?fromSrc=-`. The tag goes inside the
 * `repo` parameter because Podman 4.3 ignores the separate `tag` parameter on import, and Docker
 * documents that `repo` may include a tag there.
 */
async function importImage(docker: Docker, tarPath: string, reference: string, changes: string[]): Promise<void> {
  const stream = await docker.importImage(tarPath, { repo: reference, changes });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (error: Error | null, events: Array<{ error?: string }>) => {
      const failure = error?.message ?? events.find((event) => event.error !== undefined)?.error;
      if (failure !== undefined) reject(new Error(`importing ${reference} failed: ${failure}`));
      else resolve();
    });
  });

  if (!(await imageExists(docker, reference))) {
    throw new Error(`the engine accepted the import of ${reference} but has no image under that name`);
  }
}

/** Removes older builds of the same image so each source change does not leave ~100 MB behind. */
async function removeOtherTags(docker: Docker, name: ImageName, keep: string, log: (line: string) => void): Promise<void> {
  const repository = `${IMAGE_REPOSITORY_PREFIX}/${name}`;
  const images = await docker.listImages({ filters: { reference: [repository] } });
  const staleTags = images
    .flatMap((image) => image.RepoTags ?? [])
    .filter((tag) => tag.startsWith(`${repository}:`) && tag !== keep);

  for (const tag of staleTags) {
    try {
      await docker.getImage(tag).remove();
      log(`removed old image ${tag}`);
    } catch (error) {
      // A container of a concurrent run may still use it; the next build tries again.
      log(`could not remove old image ${tag}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

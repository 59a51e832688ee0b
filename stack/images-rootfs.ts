import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Path of the Node binary inside every image this harness builds. */
export const IMAGE_NODE_PATH = "/usr/local/bin/node";

/**
 * Lays out a minimal root filesystem that runs Node: the running Node binary, the shared
 * libraries `ldd` lists for it at the same paths, a world-writable /tmp and an empty /app.
 * NOTE: libraries loaded with dlopen are not in the `ldd` list, so native addons that need
 * more than Node's own libraries would fail inside these images.
 */
export async function createNodeRootfs(rootfs: string): Promise<void> {
  const libraries = await sharedLibraries(process.execPath);

  await copyInto(rootfs, process.execPath, IMAGE_NODE_PATH);
  for (const library of libraries) {
    await copyInto(rootfs, library, library);
  }

  await fs.mkdir(path.join(rootfs, "app"), { recursive: true });
  await fs.mkdir(path.join(rootfs, "tmp"), { recursive: true });
  await fs.chmod(path.join(rootfs, "tmp"), 0o1777);
}

/**
 * Returns the absolute paths of the libraries `ldd` resolves for a binary, the dynamic loader
 * included. The vDSO has no file and is skipped, and a library that `ldd` cannot find is an error.
 */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await run("ldd", [binary]);
  const libraries: string[] = [];

  for (const line of stdout.split("\n")) {
    if (line.includes("=> not found")) {
      throw new Error(`shared library not found for ${binary}: ldd printed "${line.trim()}"`);
    }
    const match = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (match?.[1] !== undefined) libraries.push(match[1]);
  }

  if (libraries.length === 0) throw new Error(`ldd listed no libraries for ${binary}:\n${stdout}`);
  return libraries;
}

/** Copies a file to the same absolute path under rootfs, following symlinks and keeping its mode. */
async function copyInto(rootfs: string, source: string, target: string): Promise<void> {
  const destination = path.join(rootfs, target);
  await fs.mkdir(path.dirname(destination), { recursive: true });
  await fs.copyFile(source, destination);

  const { mode } = await fs.stat(source);
  await fs.chmod(destination, mode & 0o7777);
}

/** Copies an image's source folder into the rootfs app folder, leaving out node_modules. */
export async function copyAppSources(sourceDir: string, appDir: string): Promise<void> {
  await fs.cp(sourceDir, appDir, {
    recursive: true,
    filter: (source) => path.basename(source) !== "node_modules",
  });
}

/** Packs a rootfs into an uncompressed tar with every file owned by root. */
export async function packRootfs(rootfs: string, tarPath: string): Promise<void> {
  await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", rootfs, "-cf", tarPath, "."]);
}

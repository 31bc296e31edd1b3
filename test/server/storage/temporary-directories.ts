import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Fresh directories under the OS temp dir, removed by `removeTemporaryDirectories` (afterEach). */
const created: string[] = [];

export async function createTemporaryDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), "data-bridge-kv-storage-"));
  created.push(directory);
  return directory;
}

export async function removeTemporaryDirectories(): Promise<void> {
  for (const directory of created.splice(0)) await rm(directory, { recursive: true, force: true });
}

import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

const GENERATED_SECRET_BYTES = 32;

/**
 * For programs that start a whole local cluster (`npm run cluster`, the test harness,
 * jepsen-lite): the secret file every node gets with `--cluster-secret-file`, created once
 * with a random secret, readable by its owner only. An existing file is kept, so a cluster
 * restarted on the same data keeps its secret.
 */
export async function ensureClusterSecretFile(path: string): Promise<string> {
  if (existsSync(path)) return path;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${randomBytes(GENERATED_SECRET_BYTES).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  return path;
}

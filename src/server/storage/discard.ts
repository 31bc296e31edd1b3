import { mkdir, readdir, rename } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { KvError } from "../../errors.js";

/**
 * `kv-node --rejoin`: the local state of a node that cannot be trusted (a damaged log) is moved
 * aside, never deleted, and the node starts with an empty data directory, to be caught up by
 * the cluster. Moved aside because the operator may still want to look at it or recover
 * something from it by hand; the copy is theirs to delete.
 *
 * Only the directory's contents move, into a sibling `<data-dir>.discarded-<timestamp>`: the
 * data directory itself may be a mount point, and a sibling is on the same filesystem as long
 * as it is not (then the rename fails with EXDEV and says so).
 */
export async function discardLocalState(dataDirectory: string, now: Date): Promise<{ readonly movedTo: string; readonly entries: readonly string[] }> {
  const entries = await readdir(dataDirectory);
  const movedTo = join(dirname(dataDirectory), `${basename(dataDirectory)}.discarded-${timestamp(now)}`);
  if (entries.length === 0) return { movedTo, entries };
  // Fails if the name exists: two discards in the same millisecond must not merge.
  await mkdir(movedTo);
  for (const entry of entries) {
    try {
      await rename(join(dataDirectory, entry), join(movedTo, entry));
    } catch (error) {
      throw new KvError("INVALID", `--rejoin could not move ${join(dataDirectory, entry)} to ${movedTo}: ${(error as Error).message}`);
    }
  }
  return { movedTo, entries };
}

/** 2024-05-01T10-20-30.123Z: sortable, and valid in a file name everywhere. */
function timestamp(now: Date): string {
  return now.toISOString().replaceAll(":", "-");
}

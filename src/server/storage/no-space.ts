import { KvError } from "../../errors.js";

/**
 * Telling a full disk from other storage failures. Node's fs reports errno ENOSPC as a code;
 * LevelDB reports an IO error whose text is strerror(ENOSPC), with no errno to read, so for
 * LevelDB the text (here or in the cause it wraps) is all there is.
 */
const LEVELDB_NO_SPACE_TEXT = "No space left on device";

export function isNoSpaceError(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < MAX_CAUSE_DEPTH; depth++) {
    if ((current as NodeJS.ErrnoException).code === "ENOSPC" || (current as KvError).code === "NO_SPACE") return true;
    if (current.message.includes(LEVELDB_NO_SPACE_TEXT)) return true;
    current = current.cause;
  }
  return false;
}

/** Causes followed when looking for ENOSPC: LevelDB wraps its IO error once, fs not at all. */
const MAX_CAUSE_DEPTH = 4;

/** The message an operator needs: what is full, where, and what happened because of it. */
export function noSpaceError(directory: string, error: unknown, consequence: string): KvError {
  const detail = error instanceof Error ? innermostMessage(error) : String(error);
  return new KvError("NO_SPACE", `no space left on device in ${directory}: ${consequence} (${detail})`);
}

function innermostMessage(error: Error): string {
  let current: Error = error;
  for (let depth = 0; current.cause instanceof Error && depth < MAX_CAUSE_DEPTH; depth++) current = current.cause;
  return current === error ? error.message : `${error.message}: ${current.message}`;
}

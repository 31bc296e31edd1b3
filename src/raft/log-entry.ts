import type { LogEntry } from "./types.js";

/**
 * Fixed per-entry overhead counted on top of the payload (index, term, kind on the wire), so
 * that even empty entries consume flow-control budget and a batch of them stays bounded.
 */
const ENTRY_OVERHEAD_BYTES = 24;

/** Size of an entry as counted by every byte limit of the core and of MemoryStorage. */
export function entrySizeBytes(entry: LogEntry): number {
  switch (entry.kind) {
    case "command":
      return ENTRY_OVERHEAD_BYTES + entry.data.byteLength;
    case "noop":
      return ENTRY_OVERHEAD_BYTES;
    case "membership": {
      const { voters, learners, addresses } = entry.membership;
      const names = [...voters, ...learners].reduce((sum, id) => sum + id.length, 0);
      const addressBytes = Object.values(addresses).reduce((sum, address) => sum + address.length, 0);
      return ENTRY_OVERHEAD_BYTES + names + addressBytes;
    }
  }
}

export function entriesSizeBytes(entries: readonly LogEntry[]): number {
  return entries.reduce((sum, entry) => sum + entrySizeBytes(entry), 0);
}

/**
 * The longest prefix of `entries` within `maxBytes`, but at least one entry so that a single
 * oversized entry still makes progress (etcd's limitSize).
 */
export function limitSizeBytes(entries: readonly LogEntry[], maxBytes: number): LogEntry[] {
  const result: LogEntry[] = [];
  let totalBytes = 0;
  for (const entry of entries) {
    totalBytes += entrySizeBytes(entry);
    if (result.length > 0 && totalBytes > maxBytes) break;
    result.push(entry);
  }
  return result;
}

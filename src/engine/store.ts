import { KvError } from "../errors.js";
import type { Value, ValueMap } from "./value.js";
import { CopyOnWriteMap } from "./copy-on-write.js";
import { BUCKET_COUNT, bucketOf, namespacePrefix } from "./hash.js";
import type { GlobMatcher } from "./glob.js";
import { ExpiryQueue, type ExpiryItem } from "./expiry-queue.js";

/**
 * One stored key. Entries are never changed in place (except the leader-only access hint):
 * a write replaces the whole object, which is what lets a snapshot keep reading old entries.
 */
export interface Entry {
  /** Namespace and key, see `storedKeyOf`. */
  readonly storedKey: string;
  readonly bucket: number;
  readonly value: Value;
  /** Log index of the last write. */
  readonly version: number;
  /** Log index of the write that created the key (kept while the key lives). */
  readonly createVersion: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Log time (ms) at which the key disappears, or null. */
  readonly expiresAt: number | null;
  /** Encoded size of the value in bytes. */
  readonly size: number;
  readonly metadata: ValueMap | null;
  /**
   * Last read or write, for the leader's eviction sampling only. It is not replicated state:
   * snapshots leave it out and no decision of `apply` depends on it.
   */
  lastAccessedAt: number;
}

export function isLive(entry: Entry, now: number): boolean {
  return entry.expiresAt === null || entry.expiresAt > now;
}

/** Rough per-key bookkeeping cost (object, Map slot, heap item) for the memory estimate. */
const ENTRY_OVERHEAD_BYTES = 160;
/** Garbage allowed in the expiry queue before it is compacted, besides one stale item per key. */
const EXPIRY_QUEUE_SLACK = 1024;
export const MAX_SHARD_COUNT = BUCKET_COUNT;

export function entryMemoryBytes(entry: Entry): number {
  return entry.size + 2 * entry.storedKey.length + ENTRY_OVERHEAD_BYTES;
}

/**
 * The keyspace: `shardCount` Maps, a key's shard being its bucket modulo the shard count.
 * Expiry is one queue for the whole store because purge order must not depend on the shard
 * count (state, and so snapshots, must be identical whatever the shard count).
 */
export class ShardedStore {
  readonly shardCount: number;
  private readonly shards: CopyOnWriteMap<string, Entry>[];
  private readonly expiry = new ExpiryQueue();
  private entriesWithTtl = 0;
  private storedCount = 0;
  private storedBytes = 0;

  constructor(shardCount: number) {
    // The shard count must divide the fixed bucket count so that every bucket lives entirely
    // in one shard (bucket b in shard b % shards): snapshots walk buckets, not shards.
    const isPowerOfTwo = Number.isInteger(shardCount) && shardCount >= 1 && (shardCount & (shardCount - 1)) === 0;
    if (!isPowerOfTwo || shardCount > MAX_SHARD_COUNT) {
      throw new KvError("VALUE_INVALID", `shard count must be a power of two from 1 to ${MAX_SHARD_COUNT}, got ${shardCount}`);
    }
    this.shardCount = shardCount;
    this.shards = Array.from({ length: shardCount }, () => new CopyOnWriteMap<string, Entry>());
  }

  /** Keys stored, including expired keys not purged yet (like Redis DBSIZE). */
  get size(): number {
    return this.storedCount;
  }

  get memoryBytes(): number {
    return this.storedBytes;
  }

  /** The stored entry, even if expired. */
  lookup(storedKey: string): Entry | undefined {
    return this.shardOf(bucketOf(storedKey)).get(storedKey);
  }

  /** The entry if it exists and has not expired at `now`. */
  live(storedKey: string, now: number): Entry | undefined {
    const entry = this.lookup(storedKey);
    return entry !== undefined && isLive(entry, now) ? entry : undefined;
  }

  put(entry: Entry): void {
    const shard = this.shardOf(entry.bucket);
    const previous = shard.get(entry.storedKey);
    if (previous !== undefined) this.forget(previous);
    shard.set(entry.storedKey, entry);
    this.storedCount++;
    this.storedBytes += entryMemoryBytes(entry);
    if (entry.expiresAt !== null) {
      this.entriesWithTtl++;
      if (previous?.expiresAt !== entry.expiresAt) this.trackExpiry(entry.storedKey, entry.expiresAt);
    }
  }

  remove(storedKey: string): Entry | undefined {
    const entry = this.lookup(storedKey);
    if (entry === undefined) return undefined;
    this.shardOf(entry.bucket).delete(storedKey);
    this.forget(entry);
    return entry;
  }

  /** Removes up to `limit` expired keys, earliest deadline first; returns how many. */
  purgeExpired(now: number, limit: number): number {
    return this.expiry.expireDue(now, limit, this.isCurrent, (item) => this.remove(item.id));
  }

  /** True when some key has expired by `now` (drops stale queue items on the way). */
  hasExpired(now: number): boolean {
    return this.expiry.hasCurrentDue(now, this.isCurrent);
  }

  /** Whether a queue item still describes its key's deadline (lazy deletion). */
  private readonly isCurrent = (item: ExpiryItem): boolean => this.lookup(item.id)?.expiresAt === item.expiresAt;


  shardEntries(shardIndex: number): ReadonlyMap<string, Entry> {
    const shard = this.shards[shardIndex];
    return shard === undefined ? new Map() : shard.current;
  }

  /** The current Map of every shard, frozen for a snapshot (see CopyOnWriteMap). */
  share(): ReadonlyMap<string, Entry>[] {
    return this.shards.map((shard) => shard.share());
  }

  private shardOf(bucket: number): CopyOnWriteMap<string, Entry> {
    return this.shards[bucket & (this.shardCount - 1)] as CopyOnWriteMap<string, Entry>;
  }

  private forget(entry: Entry): void {
    this.storedCount--;
    this.storedBytes -= entryMemoryBytes(entry);
    if (entry.expiresAt !== null) this.entriesWithTtl--;
  }

  private trackExpiry(storedKey: string, expiresAt: number): void {
    this.expiry.push({ expiresAt, id: storedKey });
    if (this.expiry.length > 2 * this.entriesWithTtl + EXPIRY_QUEUE_SLACK) {
      this.expiry.compact((item) => this.lookup(item.id)?.expiresAt === item.expiresAt);
    }
  }
}

/** Live entries of `namespace` whose key matches; O(keys stored), like Redis KEYS. */
export function* matchingEntries(store: ShardedStore, namespace: string, matcher: GlobMatcher, now: number): IterableIterator<Entry> {
  for (let shardIndex = 0; shardIndex < store.shardCount; shardIndex++) {
    yield* matchingInShard(store.shardEntries(shardIndex), namespace, matcher, now);
  }
}

export function* matchingInShard(
  entries: ReadonlyMap<string, Entry>,
  namespace: string,
  matcher: GlobMatcher,
  now: number,
): IterableIterator<Entry> {
  const keyStart = namespacePrefix(namespace).length;
  const prefix = namespacePrefix(namespace) + matcher.literalPrefix;
  for (const entry of entries.values()) {
    if (entry.storedKey.startsWith(prefix) && isLive(entry, now) && matcher.matches(entry.storedKey.slice(keyStart))) yield entry;
  }
}

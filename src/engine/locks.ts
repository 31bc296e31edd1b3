import { CopyOnWriteMap } from "./copy-on-write.js";
import { ExpiryQueue, type ExpiryItem } from "./expiry-queue.js";

/**
 * Locks live in their own table, apart from user keys. A grant's fencing token is the log
 * index of the command that granted it: unique, deterministic, and strictly increasing per lock
 * over the cluster's life, even after the lock record itself was purged.
 */
export interface LockRecord {
  /** Namespaced lock name, see `storedKeyOf`. */
  readonly name: string;
  readonly owner: string;
  readonly token: bigint;
  readonly expiresAt: number;
}

export interface LockResult {
  readonly acquired: boolean;
  readonly token: bigint | null;
}

const EXPIRY_QUEUE_SLACK = 1024;

export class LockTable {
  private readonly table = new CopyOnWriteMap<string, LockRecord>();
  private readonly expiry = new ExpiryQueue();

  get size(): number {
    return this.table.size;
  }

  /** Grants a free or expired lock; the holder re-acquiring refreshes the TTL and keeps the token. */
  acquire(name: string, owner: string, ttlMs: number, index: number, now: number): LockResult {
    const held = this.held(name, now);
    if (held !== undefined && held.owner !== owner) return { acquired: false, token: null };
    const token = held?.token ?? BigInt(index);
    this.store({ name, owner, token, expiresAt: now + ttlMs });
    return { acquired: true, token };
  }

  unlock(name: string, owner: string, now: number): boolean {
    if (this.held(name, now)?.owner !== owner) return false;
    this.table.delete(name);
    return true;
  }

  extend(name: string, owner: string, ttlMs: number, now: number): boolean {
    const held = this.held(name, now);
    if (held?.owner !== owner) return false;
    this.store({ ...held, expiresAt: now + ttlMs });
    return true;
  }

  /** Fencing: true only while the lock is held, unexpired, under exactly this token. */
  isHeldWithToken(name: string, token: bigint, now: number): boolean {
    return this.held(name, now)?.token === token;
  }

  /** Removes up to `limit` expired lock records, earliest first. */
  purgeExpired(now: number, limit: number): number {
    return this.expiry.expireDue(now, limit, this.isCurrent, (item) => this.table.delete(item.id));
  }

  hasExpired(now: number): boolean {
    return this.expiry.hasCurrentDue(now, this.isCurrent);
  }

  /** Whether a queue item still describes its lock's deadline (lazy deletion). */
  private readonly isCurrent = (item: ExpiryItem): boolean => this.table.get(item.id)?.expiresAt === item.expiresAt;

  /** Records sorted by name: an order that does not depend on the history of the table. */
  sortedRecords(view: ReadonlyMap<string, LockRecord> = this.table.current): LockRecord[] {
    return [...view.values()].sort((left, right) => (left.name < right.name ? -1 : left.name > right.name ? 1 : 0));
  }

  share(): ReadonlyMap<string, LockRecord> {
    return this.table.share();
  }

  /** Adds a record read from a snapshot. */
  restoreRecord(record: LockRecord): void {
    this.store(record);
  }

  private held(name: string, now: number): LockRecord | undefined {
    const record = this.table.get(name);
    return record !== undefined && record.expiresAt > now ? record : undefined;
  }

  private store(record: LockRecord): void {
    this.table.set(record.name, record);
    this.expiry.push({ expiresAt: record.expiresAt, id: record.name });
    if (this.expiry.length > 2 * this.table.size + EXPIRY_QUEUE_SLACK) {
      this.expiry.compact((item) => this.table.get(item.id)?.expiresAt === item.expiresAt);
    }
  }
}

import { assert } from "../util/assert.js";
import { limitSizeBytes } from "./log-entry.js";
import type { LogEntry, LogStorage, Membership, SnapshotMetadata } from "./types.js";

/** What a follower's log made of an AppendEntries. */
export type AppendOutcome =
  /** The log matches the leader's up to `lastIndex` (entries appended as needed). */
  | { readonly kind: "matched"; readonly lastIndex: number }
  /** No entry at prevIndex with prevTerm above the commit index: the leader backs up. */
  | { readonly kind: "mismatch" }
  /** The leader's entry at `index` differs from one this node committed: refused, never acknowledged. */
  | { readonly kind: "contradiction"; readonly index: number }
  /** Every index the message names is inside our snapshot, whose terms are gone. */
  | { readonly kind: "compacted"; readonly snapshotIndex: number };

interface MembershipRecord {
  readonly index: number;
  readonly membership: Membership;
}

/**
 * The core's view of the log (etcd's raftLog + unstable): what the driver persisted (read
 * through `LogStorage`) followed by entries and a snapshot not yet durable. Of those, the ones
 * up to `inProgressTo` are already handed to the driver, whose writes are in flight (etcd's
 * offsetInProgress): the next Ready hands out only what comes after.
 *
 * Invariants: storage is read only below `unstableOffset`; `lastIndex() = unstableOffset +
 * unstable.length - 1`; `unstableOffset - 1 <= inProgressTo <= lastIndex()`; committed never
 * decreases and never passes lastIndex().
 */
export class RaftLog {
  private unstableOffset: number;
  private unstable: LogEntry[] = [];
  private inProgressTo: number;
  /** A snapshot received from the leader that the driver has not persisted yet. */
  private pendingSnapshot: SnapshotMetadata | undefined;
  /** The pending snapshot is handed to the driver, its write in flight. */
  private snapshotInProgress = false;
  private committedIndex: number;
  /**
   * Membership entries in the log, oldest first; the first record is the configuration in
   * force at the snapshot. The latest (even uncommitted) is the one in force (§4.1).
   */
  private memberships: MembershipRecord[];

  constructor(private readonly storage: LogStorage) {
    const { hardState, membership } = storage.initialState();
    const snapshotIndex = storage.firstIndex() - 1;
    this.unstableOffset = storage.lastIndex() + 1;
    this.inProgressTo = this.unstableOffset - 1;
    this.committedIndex = Math.max(hardState.commit, snapshotIndex);
    assert(this.committedIndex <= this.lastIndex(), "persisted commit beyond the persisted log");
    this.memberships = [{ index: snapshotIndex, membership }];
    this.recordMemberships(storage.entries(storage.firstIndex(), this.unstableOffset, Number.POSITIVE_INFINITY));
  }

  get committed(): number {
    return this.committedIndex;
  }

  firstIndex(): number {
    return this.pendingSnapshot === undefined ? this.storage.firstIndex() : this.pendingSnapshot.index + 1;
  }

  lastIndex(): number {
    return this.unstableOffset + this.unstable.length - 1;
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, "the last entry always has a term");
    return term;
  }

  /** Term at `index`, undefined when compacted or beyond the end. */
  term(index: number): number | undefined {
    const snapshot = this.pendingSnapshot;
    if (snapshot !== undefined && index <= snapshot.index) return index === snapshot.index ? snapshot.term : undefined;
    if (index >= this.unstableOffset) return this.unstable[index - this.unstableOffset]?.term;
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Entries in [low, high) within maxBytes (at least one); undefined when low was compacted. */
  entries(low: number, high: number, maxBytes: number): LogEntry[] | undefined {
    if (low < this.firstIndex()) return undefined;
    assert(high <= this.lastIndex() + 1, `entries up to ${high} beyond the log end ${this.lastIndex()}`);
    if (low >= high) return [];
    const storageHigh = Math.min(high, this.unstableOffset);
    const stored = low < storageHigh ? this.storage.entries(low, storageHigh, maxBytes) : [];
    if (low + stored.length < storageHigh || high <= this.unstableOffset) return stored;
    const fromUnstable = this.unstable.slice(Math.max(low, this.unstableOffset) - this.unstableOffset, high - this.unstableOffset);
    return limitSizeBytes([...stored, ...fromUnstable], maxBytes);
  }

  /**
   * Largest index <= `index` whose term is <= `term` (or the first index whose term is
   * unknown): where two logs that differ at `index` may still agree (etcd findConflictByTerm).
   */
  findConflictByTerm(index: number, term: number): number {
    for (let candidate = Math.min(index, this.lastIndex()); candidate > 0; candidate--) {
      const candidateTerm = this.term(candidate);
      if (candidateTerm === undefined || candidateTerm <= term) return candidate;
    }
    return 0;
  }

  /**
   * Follower side of AppendEntries (Raft §5.3): when the log matches at prevIndex, append the
   * entries that are new, truncating a conflicting suffix above the commit index, and advance
   * commit. Only what the leader's terms confirm is acknowledged: the outcome names the last
   * index now known to match, or why nothing is.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly LogEntry[]): AppendOutcome {
    const snapshotIndex = this.firstIndex() - 1;
    if (prevIndex < snapshotIndex) {
      // Below our snapshot no term is left to compare with: check from the snapshot's entry on.
      const atSnapshot = entries[snapshotIndex - prevIndex - 1];
      if (atSnapshot === undefined) return { kind: "compacted", snapshotIndex };
      return this.maybeAppend(snapshotIndex, atSnapshot.term, leaderCommit, entries.slice(snapshotIndex - prevIndex));
    }
    if (!this.matchTerm(prevIndex, prevTerm)) {
      // Our entries up to the commit index are committed: a leader that disagrees is not ours.
      return prevIndex <= this.committedIndex ? { kind: "contradiction", index: prevIndex } : { kind: "mismatch" };
    }
    const conflict = entries.find((entry) => !this.matchTerm(entry.index, entry.term));
    if (conflict !== undefined) {
      if (conflict.index <= this.committedIndex) return { kind: "contradiction", index: conflict.index };
      this.append(entries.slice(conflict.index - prevIndex - 1));
    }
    const lastNewIndex = prevIndex + entries.length;
    this.commitTo(Math.min(leaderCommit, lastNewIndex));
    return { kind: "matched", lastIndex: lastNewIndex };
  }

  /** Appends entries at entries[0].index, replacing whatever follows it (never committed entries). */
  append(entries: readonly LogEntry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(first.index > this.committedIndex, `truncating committed entry ${first.index} (commit ${this.committedIndex})`);
    assert(first.index <= this.lastIndex() + 1, `append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    // A write in flight for the replaced entries is still told apart when it lands: stableTo checks the term.
    this.inProgressTo = Math.min(this.inProgressTo, first.index - 1);
    if (first.index <= this.unstableOffset) {
      this.unstableOffset = first.index;
      this.unstable = [...entries];
    } else {
      // Appending at the end (the leader's common case) must not copy the unstable tail.
      this.unstable.length = first.index - this.unstableOffset;
      for (const entry of entries) this.unstable.push(entry);
    }
    this.memberships = this.memberships.filter((record) => record.index < first.index);
    this.recordMemberships(entries);
  }

  private recordMemberships(entries: readonly LogEntry[]): void {
    for (const entry of entries) {
      if (entry.kind === "membership") this.memberships.push({ index: entry.index, membership: entry.membership });
    }
  }

  commitTo(index: number): void {
    if (index <= this.committedIndex) return;
    assert(index <= this.lastIndex(), `commit ${index} beyond the last index ${this.lastIndex()}`);
    this.committedIndex = index;
    this.forgetCommittedMemberships();
  }

  /** Committed records can never be truncated: only the newest committed one stays relevant. */
  private forgetCommittedMemberships(): void {
    let newestCommitted = 0;
    this.memberships.forEach((record, position) => {
      if (record.index <= this.committedIndex) newestCommitted = position;
    });
    if (newestCommitted > 0) this.memberships = this.memberships.slice(newestCommitted);
  }

  /** The configuration in force: the latest membership entry, committed or not. */
  membership(): Membership {
    const latest = this.memberships[this.memberships.length - 1];
    assert(latest !== undefined, "there is always a membership");
    return latest.membership;
  }

  /** A membership entry is appended but not yet committed (one change at a time). */
  membershipChangePending(): boolean {
    const latest = this.memberships[this.memberships.length - 1];
    return latest !== undefined && latest.index > this.committedIndex;
  }

  /**
   * Installs a snapshot received from the leader. When the log already holds the snapshot's
   * last entry the suffix after it stays (it matches the leader); otherwise the log is replaced.
   */
  restore(snapshot: SnapshotMetadata): void {
    assert(snapshot.index > this.committedIndex, "a restored snapshot is newer than the commit index");
    const keepSuffix = this.matchTerm(snapshot.index, snapshot.term);
    if (!keepSuffix) {
      this.unstable = [];
      this.unstableOffset = snapshot.index + 1;
    } else if (this.unstableOffset <= snapshot.index) {
      this.unstable = this.unstable.slice(snapshot.index + 1 - this.unstableOffset);
      this.unstableOffset = snapshot.index + 1;
    }
    this.inProgressTo = Math.max(Math.min(this.inProgressTo, this.lastIndex()), snapshot.index);
    this.pendingSnapshot = snapshot;
    this.snapshotInProgress = false;
    this.committedIndex = snapshot.index;
    const suffix = keepSuffix ? this.memberships.filter((record) => record.index > snapshot.index) : [];
    this.memberships = [{ index: snapshot.index, membership: snapshot.membership }, ...suffix];
  }

  /** Entries the driver has yet to be given to persist. */
  entriesToPersist(): readonly LogEntry[] {
    const from = this.inProgressTo + 1 - this.unstableOffset;
    return from === 0 ? this.unstable : this.unstable.slice(from);
  }

  /** The received snapshot the driver has yet to be given to persist. */
  snapshotToPersist(): SnapshotMetadata | undefined {
    return this.snapshotInProgress ? undefined : this.pendingSnapshot;
  }

  /** A received snapshot not yet durable: nothing above it may be applied meanwhile. */
  unstableSnapshot(): SnapshotMetadata | undefined {
    return this.pendingSnapshot;
  }

  /** Everything `entriesToPersist()` and `snapshotToPersist()` returned is now in the driver's hands. */
  markInProgress(): void {
    this.inProgressTo = this.lastIndex();
    if (this.pendingSnapshot !== undefined) this.snapshotInProgress = true;
  }

  /**
   * The driver persisted entries up to `index` (if the log still holds that entry with `term`:
   * a write of entries replaced meanwhile proves nothing about their replacements).
   */
  stableTo(index: number, term: number): void {
    if (index < this.unstableOffset || !this.matchTerm(index, term)) return;
    this.unstable = this.unstable.slice(index + 1 - this.unstableOffset);
    this.unstableOffset = index + 1;
    this.inProgressTo = Math.max(this.inProgressTo, index);
  }

  stableSnapshotTo(index: number): void {
    if (this.pendingSnapshot?.index !== index) return;
    this.pendingSnapshot = undefined;
    this.snapshotInProgress = false;
  }

  /** Last index the driver has persisted (what the leader may count for itself). */
  persistedLastIndex(): number {
    return this.pendingSnapshot === undefined ? this.unstableOffset - 1 : 0;
  }
}

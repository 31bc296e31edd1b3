import { assert } from "../util/assert.js";
import { limitSizeBytes } from "./log-entry.js";
import type { HardState, LogEntry, LogStorage, Membership, SnapshotMetadata } from "./types.js";

export interface MemoryStorageInitial {
  /** Membership in force at the snapshot (or at index 0 for a fresh cluster). */
  readonly membership: Membership;
  readonly hardState?: HardState;
  readonly snapshot?: SnapshotMetadata & { readonly data: Uint8Array };
  /** Entries following the snapshot, contiguous. */
  readonly entries?: readonly LogEntry[];
}

/**
 * The log tail since the last snapshot, the snapshot and the hard state, all in memory. The
 * simulator uses it as the whole durable state of a node; the real node keeps it as the
 * in-memory image of what LevelDB holds (etcd's MemoryStorage).
 *
 * Invariant: `entries[i].index === snapshot.index + 1 + i`.
 */
export class MemoryStorage implements LogStorage {
  private snapshot: SnapshotMetadata;
  private data: Uint8Array;
  private log: LogEntry[] = [];
  private hardState: HardState;

  constructor(initial: MemoryStorageInitial) {
    const snapshot = initial.snapshot;
    this.snapshot = snapshot
      ? { index: snapshot.index, term: snapshot.term, membership: snapshot.membership, sizeBytes: snapshot.sizeBytes }
      : { index: 0, term: 0, membership: initial.membership, sizeBytes: 0 };
    this.data = snapshot ? snapshot.data : new Uint8Array(0);
    assert(this.data.byteLength === this.snapshot.sizeBytes, "snapshot sizeBytes must match its data");
    this.hardState = initial.hardState ?? { term: 0, vote: null, commit: this.snapshot.index };
    this.append(initial.entries ?? []);
  }

  initialState(): { readonly hardState: HardState; readonly membership: Membership } {
    return { hardState: this.hardState, membership: this.snapshot.membership };
  }

  firstIndex(): number {
    return this.snapshot.index + 1;
  }

  lastIndex(): number {
    return this.snapshot.index + this.log.length;
  }

  term(index: number): number | undefined {
    if (index === this.snapshot.index) return this.snapshot.term;
    return this.log[index - this.snapshot.index - 1]?.term;
  }

  entries(low: number, high: number, maxBytes: number): LogEntry[] {
    assert(low >= this.firstIndex() && high <= this.lastIndex() + 1 && low <= high, `entries [${low}, ${high}) out of range`);
    const offset = this.snapshot.index + 1;
    return limitSizeBytes(this.log.slice(low - offset, high - offset), maxBytes);
  }

  snapshotMetadata(): SnapshotMetadata {
    return this.snapshot;
  }

  readSnapshotChunk(offset: number, maxBytes: number): Uint8Array {
    return this.data.subarray(offset, offset + maxBytes);
  }

  snapshotData(): Uint8Array {
    return this.data;
  }

  /** Appends entries persisted from a Ready; an entry at an existing index replaces it and the rest of the log. */
  append(entries: readonly LogEntry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(first.index <= this.lastIndex() + 1, `append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    // Entries already covered by the snapshot are committed and identical: skip them.
    const fresh = entries.filter((entry) => entry.index > this.snapshot.index);
    const start = fresh[0];
    if (start === undefined) return;
    this.log.length = start.index - this.snapshot.index - 1;
    for (const entry of fresh) this.log.push(entry);
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  createSnapshot(metadata: SnapshotMetadata, data: Uint8Array): void {
    assert(data.byteLength === metadata.sizeBytes, "snapshot sizeBytes must match its data");
    assert(metadata.index <= this.lastIndex(), `snapshot at ${metadata.index} beyond the log end ${this.lastIndex()}`);
    assert(metadata.term === this.term(metadata.index), `snapshot term does not match the log at ${metadata.index}`);
    if (metadata.index <= this.snapshot.index) return;
    this.log = this.log.slice(metadata.index - this.snapshot.index);
    this.snapshot = metadata;
    this.data = data;
  }

  applySnapshot(metadata: SnapshotMetadata, data: Uint8Array): void {
    assert(data.byteLength === metadata.sizeBytes, "snapshot sizeBytes must match its data");
    if (metadata.index <= this.snapshot.index) return;
    const matches = this.term(metadata.index) === metadata.term;
    this.log = matches ? this.log.slice(metadata.index - this.snapshot.index) : [];
    this.snapshot = metadata;
    this.data = data;
  }
}

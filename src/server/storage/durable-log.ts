import { Level } from "level";
import { KvError } from "../../errors.js";
import { LEVELDB_MAX_OPEN_FILES } from "../connection-limits.js";
import type { HardState, LogEntry } from "../../raft/types.js";
import { assert } from "../../util/assert.js";
import { checkLevelDbLogs, type LogCheckReport } from "./leveldb-log-check.js";
import {
  decodeEntry,
  decodeLogState,
  decodeSnapshotPoint,
  encodeEntry,
  encodeLogState,
  encodeSnapshotPoint,
  encodeSyncMarker,
  ENTRY_KEY_RANGE,
  entryKey,
  HARD_STATE_KEY,
  indexOfEntryKey,
  NO_HARD_STATE,
  SNAPSHOT_POINT_KEY,
  SYNC_MARKER_KEY,
  type LogStateRecord,
  type SnapshotPoint,
} from "./log-records.js";
import { isNoSpaceError, noSpaceError } from "./no-space.js";
import { corrupt } from "./record-codec.js";

export type FsyncMode = "always" | "interval";

export interface DurableLogOptions {
  readonly fsync: FsyncMode;
  /** "interval" mode: how often a synced write makes everything written so far durable. */
  readonly fsyncIntervalMs?: number;
  /** Entries in one LevelDB batch; a single call is never split, so it may exceed this alone. */
  readonly maxBatchEntries?: number;
  /** Entries (a call without entries counts as one) queued behind the write in flight; past it: BUSY. */
  readonly maxPendingEntries?: number;
  /** Told the bytes of every batch written, so that a disk-space guard can look again after large ones. */
  readonly onBatchWritten?: (bytes: number) => void;
}

export interface LoadedLog {
  readonly hardState: HardState | null;
  /** Entries start after this index (0 = no snapshot). */
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
  /** Contiguous, snapshotIndex + 1 .. */
  readonly entries: LogEntry[];
}

export interface DurableLogStats {
  readonly batches: number;
  readonly calls: number;
  readonly entries: number;
  readonly syncs: number;
  readonly averageCallsPerBatch: number;
}

const DEFAULT_FSYNC_INTERVAL_MS = 100;
/** About 10 ms of LevelDB work for 256-byte entries (SPEC §11): keeps one batch's latency short. */
const DEFAULT_MAX_BATCH_ENTRIES = 1000;
const DEFAULT_MAX_PENDING_ENTRIES = 100_000;

type LogDatabase = Level<Uint8Array, Uint8Array>;

type Operation =
  | { readonly type: "put"; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: "del"; readonly key: Uint8Array };

interface PendingCall {
  readonly operations: readonly Operation[];
  readonly entryCount: number;
  /** Weight against maxBatchEntries / maxPendingEntries: a call without entries weighs one. */
  readonly weight: number;
  /** The hard state and watermark as of this call, written with the batch that ends with it. */
  readonly logState: Operation;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * The Raft log's write-ahead log in LevelDB, with group commit: one writer, at most one batch
 * in flight, and every call that arrives meanwhile joins the next batch, so one fsync covers
 * them all. The node keeps the log tail in memory; this class only knows the log's bounds,
 * which it updates when a call is queued so that later calls are planned against it.
 */
export class DurableLog {
  private readonly queue: PendingCall[] = [];
  private pendingEntries = 0;
  private writer: Promise<void> | null = null;
  /** "interval" mode: the next batch is written with sync: true (plus a marker if empty). */
  private syncRequested = false;
  private unsyncedWrites = false;
  /** A failed write leaves disk and the planned bounds apart: the log refuses all further work. */
  private failure: Error | null = null;
  private closing: Promise<void> | null = null;
  private readonly syncTimer: NodeJS.Timeout | null;
  private readonly counters = { batches: 0, calls: 0, entries: 0, syncs: 0 };
  private readonly maxBatchEntries: number;
  private readonly maxPendingEntries: number;

  private constructor(
    private readonly directory: string,
    private readonly db: LogDatabase,
    private readonly options: DurableLogOptions,
    private snapshotPoint: SnapshotPoint,
    private lastIndex: number,
    private hardState: HardState,
    /** What the check of LevelDB's own log files found before it opened them. */
    readonly startupCheck: LogCheckReport,
  ) {
    this.maxBatchEntries = options.maxBatchEntries ?? DEFAULT_MAX_BATCH_ENTRIES;
    this.maxPendingEntries = options.maxPendingEntries ?? DEFAULT_MAX_PENDING_ENTRIES;
    assert(this.maxBatchEntries >= 1, "maxBatchEntries must be at least 1");
    assert(this.maxPendingEntries >= 1, "maxPendingEntries must be at least 1");
    assert((options.fsyncIntervalMs ?? DEFAULT_FSYNC_INTERVAL_MS) > 0, "fsyncIntervalMs must be positive");
    this.syncTimer = options.fsync === "interval" ? this.startSyncTimer() : null;
  }

  /**
   * Opens the log, refusing (CORRUPT, naming the file or index) one that is damaged: LevelDB's
   * log files are verified before LevelDB reads them (it would drop damaged records), and the
   * log must end exactly at the watermark of its last batch.
   */
  static async open(directory: string, options: DurableLogOptions): Promise<DurableLog> {
    const startupCheck = await checkLevelDbLogs(directory);
    const db: LogDatabase = new Level<Uint8Array, Uint8Array>(directory, {
      keyEncoding: "view",
      valueEncoding: "view",
      // Explicit, because the node's connection limit keeps exactly this many descriptors back.
      maxOpenFiles: LEVELDB_MAX_OPEN_FILES,
    });
    await db.open();
    try {
      const snapshotPoint = await readSnapshotPoint(db);
      const lastKeys = await db.keys({ ...ENTRY_KEY_RANGE, reverse: true, limit: 1 }).all();
      const lastKey = lastKeys[0];
      // An entry left below the snapshot point is reported by load(); here it must not lower the bound.
      const lastIndex = Math.max(snapshotPoint.index, lastKey === undefined ? 0 : indexOfEntryKey(lastKey));
      const logState = await readLogState(db);
      checkWatermark(directory, lastIndex, logState?.lastIndexWritten ?? null);
      return new DurableLog(directory, db, options, snapshotPoint, lastIndex, logState?.hardState ?? NO_HARD_STATE, startupCheck);
    } catch (error) {
      await db.close();
      throw error;
    }
  }

  /** Reads and verifies the whole log: every record's checksum, shape, index and term order. */
  async load(): Promise<LoadedLog> {
    await this.idle();
    const logState = await readLogState(this.db);
    const point = await readSnapshotPoint(this.db);
    const entries: LogEntry[] = [];
    let previousTerm = point.term;
    for await (const [key, value] of this.db.iterator(ENTRY_KEY_RANGE)) {
      const expectedIndex = point.index + entries.length + 1;
      const index = indexOfEntryKey(key);
      if (index !== expectedIndex) throw misplacedEntry(index, expectedIndex, point);
      const entry = decodeEntry(value, index);
      if (entry.term < previousTerm) {
        throw corrupt(`log entry ${index}`, `term ${entry.term} is below the previous term ${previousTerm}`);
      }
      previousTerm = entry.term;
      entries.push(entry);
    }
    return {
      hardState: logState?.hardState ?? null,
      snapshotIndex: point.index,
      snapshotTerm: point.term,
      entries,
    };
  }

  /**
   * Persists entries (an entry at an existing index replaces it and deletes everything after
   * it, in the same batch) and the hard state, atomically. Resolves once durable ("always") or
   * written to the OS ("interval"; the background sync makes it durable).
   */
  append(entries: readonly LogEntry[], hardState?: HardState): Promise<void> {
    return this.enqueue(entries.length, () => {
      if (hardState !== undefined) this.hardState = hardState;
      return entries.length > 0 ? this.planEntries(entries) : [];
    });
  }

  /** After a local snapshot at (index, term): deletes entries <= index and records the point. */
  compact(index: number, term: number): Promise<void> {
    return this.enqueue(0, () => {
      if (index <= this.snapshotPoint.index) return [];
      assert(index <= this.lastIndex, `compact(${index}) beyond the last index ${this.lastIndex}`);
      const operations = this.deleteEntries(this.snapshotPoint.index + 1, index);
      return [...operations, this.moveSnapshotPoint({ index, term })];
    });
  }

  /**
   * After installing a snapshot from the leader: drops the entries it covers and records the
   * point. The entries after it stay when the log holds the snapshot's last entry (`keepSuffix`:
   * they match the leader's, and this node may have acknowledged them); otherwise all go.
   */
  resetToSnapshot(index: number, term: number, hardState: HardState, keepSuffix = false): Promise<void> {
    return this.enqueue(0, () => {
      assert(index >= this.snapshotPoint.index, `snapshot ${index} is older than the log's snapshot ${this.snapshotPoint.index}`);
      const kept = keepSuffix && index <= this.lastIndex;
      const operations = this.deleteEntries(this.snapshotPoint.index + 1, kept ? index : this.lastIndex);
      operations.push(this.moveSnapshotPoint({ index, term }));
      if (!kept) this.lastIndex = index;
      this.hardState = hardState;
      return operations;
    });
  }

  stats(): DurableLogStats {
    const { batches, calls, entries, syncs } = this.counters;
    return { batches, calls, entries, syncs, averageCallsPerBatch: batches === 0 ? 0 : calls / batches };
  }

  /** Writes and syncs what is pending, then closes the database. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    if (this.syncTimer !== null) clearInterval(this.syncTimer);
    await this.idle();
    if (this.failure === null && this.unsyncedWrites) {
      this.syncRequested = true;
      this.kick();
      await this.idle();
    }
    await this.db.close();
  }

  /** Checks that the log accepts work, then plans the call's operations and queues them. */
  private enqueue(entryCount: number, plan: () => Operation[]): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closing !== null) return Promise.reject(new KvError("UNAVAILABLE", "the log is closed"));
    const weight = Math.max(1, entryCount);
    if (this.pendingEntries > 0 && this.pendingEntries + weight > this.maxPendingEntries) {
      return Promise.reject(
        new KvError("BUSY", `log write queue full (${this.pendingEntries} of ${this.maxPendingEntries} entries pending)`),
      );
    }
    const operations = plan();
    const logState = this.logStatePut();
    this.pendingEntries += weight;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ operations, entryCount, weight, logState, resolve, reject });
      this.kick();
    });
  }

  private planEntries(entries: readonly LogEntry[]): Operation[] {
    const firstIndex = entries[0]?.index ?? 0;
    assert(
      firstIndex > this.snapshotPoint.index && firstIndex <= this.lastIndex + 1,
      `append at ${firstIndex} leaves a gap or rewrites the snapshot (snapshot ${this.snapshotPoint.index}, last ${this.lastIndex})`,
    );
    const operations: Operation[] = entries.map((entry, offset) => {
      assert(entry.index === firstIndex + offset, `appended entries are not contiguous at ${entry.index}`);
      return { type: "put", key: entryKey(entry.index), value: encodeEntry(entry) };
    });
    const newLastIndex = firstIndex + entries.length - 1;
    operations.push(...this.deleteEntries(newLastIndex + 1, this.lastIndex));
    this.lastIndex = newLastIndex;
    return operations;
  }

  private deleteEntries(fromIndex: number, toIndex: number): Operation[] {
    const operations: Operation[] = [];
    for (let index = fromIndex; index <= toIndex; index++) operations.push({ type: "del", key: entryKey(index) });
    return operations;
  }

  /** The hard state and the last index as planned so far: the state once this call is written. */
  private logStatePut(): Operation {
    return { type: "put", key: HARD_STATE_KEY, value: encodeLogState({ hardState: this.hardState, lastIndexWritten: this.lastIndex }) };
  }

  private moveSnapshotPoint(point: SnapshotPoint): Operation {
    this.snapshotPoint = point;
    return { type: "put", key: SNAPSHOT_POINT_KEY, value: encodeSnapshotPoint(point) };
  }

  /** Starts the writer unless it runs; it drains the queue batch by batch. */
  private kick(): void {
    if (this.writer !== null) return;
    this.writer = this.drain().finally(() => {
      this.writer = null;
      // A call queued between the loop's last check and this callback would be stranded.
      if (this.failure === null && (this.queue.length > 0 || this.syncRequested)) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.failure === null && (this.queue.length > 0 || this.syncRequested)) {
      await this.writeBatch(this.takeBatch());
    }
  }

  /** Whole calls in arrival order, up to maxBatchEntries (at least one call). */
  private takeBatch(): PendingCall[] {
    let count = 0;
    let weight = 0;
    for (const call of this.queue) {
      if (count > 0 && weight + call.weight > this.maxBatchEntries) break;
      count++;
      weight += call.weight;
    }
    return this.queue.splice(0, count);
  }

  private async writeBatch(calls: readonly PendingCall[]): Promise<void> {
    const sync = this.options.fsync === "always" || this.syncRequested;
    const operations = calls.flatMap((call) => call.operations);
    // One state record per batch, the last call's: the calls are planned in order, so it
    // covers every operation of the batch. A marker-only batch changes no state and needs none.
    const lastCall = calls.at(-1);
    if (lastCall !== undefined) operations.push(lastCall.logState);
    if (this.syncRequested) {
      this.syncRequested = false;
      operations.push({ type: "put", key: SYNC_MARKER_KEY, value: encodeSyncMarker(this.counters.syncs + 1) });
    }
    // Set before the write so that the interval timer syncs a batch still in flight.
    this.unsyncedWrites = !sync;
    try {
      await this.writeChained(operations, sync);
    } catch (error) {
      this.fail(this.describeFailure(error as Error), calls);
      return;
    }
    this.options.onBatchWritten?.(batchBytes(operations));
    this.countBatch(calls, sync);
    for (const call of calls) call.resolve();
  }

  /**
   * One LevelDB write through a chained batch: abstract-level's array form validates and
   * rebuilds every operation object before the native call, which cost 13–15 µs of CPU per
   * entry against 3–4 µs this way (100 puts of 300 bytes, docs/BENCHMARKS.md), on every node
   * for every entry.
   */
  private async writeChained(operations: readonly Operation[], sync: boolean): Promise<void> {
    const batch = this.db.batch();
    try {
      for (const operation of operations) {
        if (operation.type === "put") batch.put(operation.key, operation.value);
        else batch.del(operation.key);
      }
    } catch (error) {
      await batch.close();
      throw error;
    }
    await batch.write({ sync });
  }

  private countBatch(calls: readonly PendingCall[], sync: boolean): void {
    for (const call of calls) {
      this.pendingEntries -= call.weight;
      this.counters.entries += call.entryCount;
    }
    if (sync) this.counters.syncs++;
    if (calls.length === 0) return;
    this.counters.batches++;
    this.counters.calls += calls.length;
  }

  /**
   * After a failed append LevelDB's log writer may have left a partial record and goes on at
   * the wrong place in its block, which a later recovery reads as damage and drops: so no
   * write follows a failed one (the log refuses all work from now on), and a full disk says so.
   */
  private describeFailure(error: Error): Error {
    if (!isNoSpaceError(error)) return error;
    return noSpaceError(this.directory, error, "LevelDB could not write the log, which takes no further write");
  }

  private fail(error: Error, calls: readonly PendingCall[]): void {
    this.failure = error;
    const stranded = [...calls, ...this.queue.splice(0)];
    this.pendingEntries = 0;
    for (const call of stranded) call.reject(error);
  }

  private startSyncTimer(): NodeJS.Timeout {
    const timer = setInterval(() => {
      if (!this.unsyncedWrites || this.failure !== null) return;
      this.syncRequested = true;
      this.kick();
    }, this.options.fsyncIntervalMs ?? DEFAULT_FSYNC_INTERVAL_MS);
    // The timer alone must not keep the process alive.
    timer.unref();
    return timer;
  }

  private async idle(): Promise<void> {
    while (this.writer !== null) await this.writer;
  }
}

async function readSnapshotPoint(db: LogDatabase): Promise<SnapshotPoint> {
  const record = await db.get(SNAPSHOT_POINT_KEY);
  return record === undefined ? { index: 0, term: 0 } : decodeSnapshotPoint(record);
}

function batchBytes(operations: readonly Operation[]): number {
  let bytes = 0;
  for (const operation of operations) bytes += operation.key.length + (operation.type === "put" ? operation.value.length : 0);
  return bytes;
}

function misplacedEntry(index: number, expectedIndex: number, point: SnapshotPoint): KvError {
  if (index <= point.index) {
    return corrupt(`log entry ${index}`, `stored at or below the snapshot index ${point.index}`);
  }
  return corrupt(`log entry ${expectedIndex}`, `missing (the next stored entry is ${index})`);
}

async function readLogState(db: LogDatabase): Promise<LogStateRecord | null> {
  const record = await db.get(HARD_STATE_KEY);
  return record === undefined ? null : decodeLogState(record);
}

/**
 * The log's last index must be the one its last batch recorded. Fewer entries means LevelDB
 * lost some it had acknowledged as written; a log from before the watermark has none to check.
 */
function checkWatermark(directory: string, lastIndex: number, lastIndexWritten: number | null): void {
  if (lastIndexWritten === null || lastIndex === lastIndexWritten) return;
  const found = lastIndex < lastIndexWritten ? `entries ${lastIndex + 1}..${lastIndexWritten} are missing` : `entries after it are stored`;
  throw corrupt(`log ${directory}`, `index ${lastIndexWritten} was written (the watermark) but the log ends at ${lastIndex}: ${found}`);
}

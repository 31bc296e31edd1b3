import { statfs } from "node:fs/promises";
import type { Logger } from "pino";
import { KvError } from "../errors.js";
import type { Message } from "../raft/types.js";
import type { Counter, Metrics } from "./metrics.js";

/**
 * Keeps the node from filling its disk. LevelDB must never meet ENOSPC: after a failed log
 * append its writer may leave a partial record that a later recovery reads as damage and
 * drops acknowledged records after it. So writes stop *before* the disk is full: below a
 * reserve of free bytes the leader refuses proposals (NO_SPACE) and a follower stops taking
 * entries and snapshots (heartbeats still reset its election timer, so it does not campaign).
 * Reads go on; when space returns, so do writes, without a restart.
 */

/** Free bytes kept in reserve by default (`--min-free-disk-bytes`): room for LevelDB compactions and a snapshot. */
export const DEFAULT_MIN_FREE_DISK_BYTES = 64 * 1024 * 1024;
/** How often free space is measured while little is written. */
export const DEFAULT_DISK_REFRESH_INTERVAL_MS = 1000;
/** Bytes written since the last measurement that make the guard measure again at once. */
const REFRESH_AFTER_WRITTEN_BYTES = 1024 * 1024;

export interface DiskSpaceGuardOptions {
  readonly directory: string;
  readonly minFreeBytes: number;
  readonly refreshIntervalMs?: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Free bytes for unprivileged writers on the directory's filesystem; statfs unless a test says otherwise. */
  readonly measureFreeBytes?: (directory: string) => Promise<number>;
}

export class DiskSpaceGuard {
  private measuredFreeBytes: number;
  /** Written since the last measurement: counted against the free space until it is measured again. */
  private writtenSinceMeasureBytes = 0;
  private measuring: Promise<void> | null = null;
  private wasLow = false;
  private readonly timer: NodeJS.Timeout;
  private readonly measure: (directory: string) => Promise<number>;
  private readonly droppedMessages: Counter;

  private constructor(
    private readonly options: DiskSpaceGuardOptions,
    initialFreeBytes: number,
  ) {
    this.measure = options.measureFreeBytes ?? statfsFreeBytes;
    this.measuredFreeBytes = initialFreeBytes;
    this.timer = setInterval(() => void this.refresh(), options.refreshIntervalMs ?? DEFAULT_DISK_REFRESH_INTERVAL_MS);
    this.timer.unref();
    const { metrics } = options;
    metrics.gauge("kv_disk_free_bytes", "Free bytes on the data directory's filesystem, as last measured less what was written since.", () => this.freeBytes);
    metrics.gauge("kv_disk_space_low", "1 while free space is below --min-free-disk-bytes: writes are refused.", () => (this.isLow ? 1 : 0));
    this.droppedMessages = metrics.counter("kv_disk_full_dropped_messages_total", "Entries and snapshot messages a follower dropped while its disk was below the reserve.");
    this.noteTransition();
  }

  /** Measures once before the node serves, so that the first write already sees the disk. */
  static async start(options: DiskSpaceGuardOptions): Promise<DiskSpaceGuard> {
    if (!Number.isSafeInteger(options.minFreeBytes) || options.minFreeBytes < 0) {
      throw new KvError("INVALID", `the free disk reserve must be a non-negative integer of bytes, not ${options.minFreeBytes}`);
    }
    const measure = options.measureFreeBytes ?? statfsFreeBytes;
    return new DiskSpaceGuard(options, await measure(options.directory));
  }

  get freeBytes(): number {
    return Math.max(0, this.measuredFreeBytes - this.writtenSinceMeasureBytes);
  }

  get isLow(): boolean {
    return this.freeBytes < this.options.minFreeBytes;
  }

  /** Counts bytes just written; after enough of them the disk is measured again. */
  noteWritten(bytes: number): void {
    this.writtenSinceMeasureBytes += bytes;
    if (this.writtenSinceMeasureBytes >= REFRESH_AFTER_WRITTEN_BYTES) void this.refresh();
    this.noteTransition();
  }

  /** The leader's gate for proposals. */
  refuseIfLow(): void {
    if (!this.isLow) return;
    throw new KvError(
      "NO_SPACE",
      `only ${this.freeBytes} bytes free in ${this.options.directory}, below the reserve of ${this.options.minFreeBytes} (--min-free-disk-bytes): writes are refused until space is freed`,
    );
  }

  /**
   * A follower's gate, before the Raft core sees the messages: while the disk is low, entries
   * and snapshot chunks are dropped unanswered (the leader retries them later) and everything
   * else, heartbeats and votes included, goes through.
   */
  admit(messages: readonly Message[]): readonly Message[] {
    if (!this.isLow) return messages;
    const admitted = messages.filter((message) => !writesToDisk(message));
    this.droppedMessages.increment(messages.length - admitted.length);
    return admitted;
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Measures again; a measurement already under way is shared. A failed one keeps the last value. */
  refresh(): Promise<void> {
    this.measuring ??= this.measureNow().finally(() => {
      this.measuring = null;
    });
    return this.measuring;
  }

  private async measureNow(): Promise<void> {
    const writtenBefore = this.writtenSinceMeasureBytes;
    try {
      this.measuredFreeBytes = await this.measure(this.options.directory);
      // Bytes written while statfs ran may or may not be in its answer: keep counting them.
      this.writtenSinceMeasureBytes -= writtenBefore;
    } catch (error) {
      this.options.logger.warn({ error: (error as Error).message, directory: this.options.directory }, "could not measure free disk space; keeping the last figure");
    }
    this.noteTransition();
  }

  private noteTransition(): void {
    const low = this.isLow;
    if (low === this.wasLow) return;
    this.wasLow = low;
    const fields = { directory: this.options.directory, freeBytes: this.freeBytes, minFreeBytes: this.options.minFreeBytes };
    if (low) this.options.logger.warn(fields, "free disk space below the reserve: refusing writes (NO_SPACE) and replicated entries, still serving reads");
    else this.options.logger.info(fields, "free disk space back above the reserve: accepting writes again");
  }
}

function writesToDisk(message: Message): boolean {
  return (message.type === "appendEntries" && message.entries.length > 0) || message.type === "installSnapshot";
}

async function statfsFreeBytes(directory: string): Promise<number> {
  const { bavail, bsize } = await statfs(directory);
  return bavail * bsize;
}

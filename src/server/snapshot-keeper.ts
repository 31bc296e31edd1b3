import { open } from "node:fs/promises";
import { basename } from "node:path";
import type { Logger } from "pino";
import { KvError } from "../errors.js";
import type { MemoryStorage } from "../raft/memory-storage.js";
import type { HardState, SnapshotChunk, SnapshotMetadata } from "../raft/types.js";
import type { DurableLog } from "./storage/durable-log.js";
import { isNoSpaceError, noSpaceError } from "./storage/no-space.js";
import { RetryBackoff } from "./storage/retry-backoff.js";
import type { SnapshotFile, SnapshotReceiver, SnapshotStore } from "./storage/snapshot-store.js";

export interface SnapshotFileSlice {
  readonly name: string;
  readonly index: number;
  readonly sizeBytes: number;
  readonly data: Uint8Array;
}

/** What a local snapshot captures: the state machine image as of `index`. */
export interface SnapshotSource {
  readonly index: number;
  readonly term: number;
  readonly membership: SnapshotMetadata["membership"];
  readonly data: AsyncIterable<Uint8Array>;
}

/**
 * Pause after a failed local snapshot, doubling per failure up to the maximum: a snapshot that
 * fails at once (full disk) would otherwise be tried again on every tick.
 */
export const SNAPSHOT_RETRY_FIRST_DELAY_MS = 1000;
export const SNAPSHOT_RETRY_MAX_DELAY_MS = 60_000;

/**
 * Snapshots on disk and in the Raft storage: taking local ones (then compacting the log), and
 * receiving the leader's chunk by chunk. The on-disk file is the durable copy; MemoryStorage
 * holds the bytes that the leader streams to followers that fell behind.
 */
export class SnapshotKeeper {
  private receiver: { readonly metadata: SnapshotMetadata; readonly sink: SnapshotReceiver } | null = null;
  private taking = false;
  /** The newest snapshot file on disk, the one `kv snapshot save` downloads. */
  private latestFile: SnapshotFile | null;
  private readonly retry = new RetryBackoff({ firstDelayMs: SNAPSHOT_RETRY_FIRST_DELAY_MS, maxDelayMs: SNAPSHOT_RETRY_MAX_DELAY_MS });
  lastSnapshotIndex: number;
  lastSnapshotAtMs: number;

  constructor(
    private readonly store: SnapshotStore,
    private readonly storage: MemoryStorage,
    private readonly log: DurableLog,
    private readonly logger: Logger,
    initialFile: SnapshotFile | null,
    nowMs: number,
    /** Told the size of every snapshot file written, so that the disk-space guard looks again. */
    private readonly onWritten: (bytes: number) => void = () => undefined,
  ) {
    this.latestFile = initialFile;
    this.lastSnapshotIndex = initialFile?.metadata.index ?? 0;
    this.lastSnapshotAtMs = nowMs;
  }

  get inProgress(): boolean {
    return this.taking;
  }

  /** False while a failed snapshot's backoff lasts: check it before building a source. */
  isRetryDue(nowMs: number): boolean {
    return this.retry.isDue(nowMs);
  }

  /**
   * A snapshot the node decided is due: skipped while one is being written or while a failed
   * one's backoff lasts; a failure is logged with the pause before the next try.
   */
  takeInBackground(source: SnapshotSource, nowMs: number): void {
    if (this.taking || !this.retry.isDue(nowMs)) return;
    this.take(source, nowMs).catch((error: unknown) => {
      const retryInMs = this.retry.failed(Date.now());
      this.logger.error({ error: (error as Error).message, retryInMs, failures: this.retry.consecutiveFailures }, "snapshot failed; will retry");
    });
  }

  /**
   * Writes a local snapshot and compacts the log below it. Runs beside the apply loop: the
   * engine's snapshot is copy-on-write, so it stays an image of `source.index`.
   */
  async take(source: SnapshotSource, nowMs: number): Promise<void> {
    if (this.taking) return;
    this.taking = true;
    try {
      const started = Date.now();
      const file = await this.save(source);
      const data = await readAll(file);
      if (source.index > this.storage.snapshotMetadata().index) {
        this.storage.createSnapshot(file.metadata, data);
        await this.log.compact(source.index, source.term);
      }
      this.latestFile = file;
      this.lastSnapshotIndex = source.index;
      this.lastSnapshotAtMs = nowMs;
      this.retry.succeeded();
      this.logger.info({ index: source.index, bytes: data.byteLength, ms: Date.now() - started }, "snapshot taken");
    } finally {
      this.taking = false;
    }
  }

  /** Writes the file; a failure leaves no temporary file behind, and a full disk says where. */
  private async save(source: SnapshotSource): Promise<SnapshotFile> {
    try {
      const file = await this.store.save({ index: source.index, term: source.term, membership: source.membership }, source.data);
      this.onWritten(file.metadata.sizeBytes);
      return file;
    } catch (error) {
      await this.store.removeTemporaryFiles();
      throw this.describeFailure(error);
    }
  }

  private describeFailure(error: unknown): unknown {
    return isNoSpaceError(error) ? noSpaceError(this.store.directoryPath, error, "could not write a snapshot") : error;
  }

  /** Writes one chunk of a snapshot the leader is streaming to us. */
  async receiveChunk(chunk: SnapshotChunk): Promise<void> {
    if (chunk.offset === 0 || this.receiver === null || !sameSnapshot(this.receiver.metadata, chunk.metadata)) {
      await this.receiver?.sink.abort();
      this.receiver = { metadata: chunk.metadata, sink: this.store.beginReceive(chunk.metadata) };
    }
    try {
      await this.receiver.sink.write(chunk.offset, chunk.data);
    } catch (error) {
      throw this.describeFailure(error);
    }
    this.onWritten(chunk.data.byteLength);
  }

  /**
   * Makes a fully received snapshot durable and the base of the log: the file is verified and
   * renamed, the in-memory log replaced, and the WAL reset. Returns the file to restore from.
   */
  async install(metadata: SnapshotMetadata, hardState: HardState): Promise<SnapshotFile> {
    const receiver = this.receiver;
    if (receiver === null || !sameSnapshot(receiver.metadata, metadata)) {
      throw new Error(`snapshot ${metadata.index}/${metadata.term} completed without its chunks`);
    }
    this.receiver = null;
    const file = await receiver.sink.finish();
    const data = await readAll(file);
    this.storage.applySnapshot(metadata, data);
    // The in-memory log kept the entries after the snapshot if it held the snapshot's last
    // entry: the durable log keeps them too, or a restart would lose what this node acknowledged.
    const keepSuffix = this.storage.lastIndex() > metadata.index;
    await this.log.resetToSnapshot(metadata.index, metadata.term, hardState, keepSuffix);
    this.latestFile = file;
    this.lastSnapshotIndex = metadata.index;
    this.logger.info({ index: metadata.index, term: metadata.term, bytes: data.byteLength }, "snapshot received from the leader");
    return file;
  }

  /** Raw bytes of the newest snapshot file from `offset`: header, data and checksums as stored. */
  async readLatestFile(offset: number, maxBytes: number): Promise<SnapshotFileSlice> {
    const file = this.latestFile;
    if (file === null) throw new KvError("NOT_FOUND", "this node has no snapshot yet");
    const handle = await open(file.path, "r");
    try {
      const { size } = await handle.stat();
      if (offset < 0 || offset > size) throw new KvError("INVALID", `offset ${offset} is outside the ${size}-byte snapshot file`);
      const data = Buffer.alloc(Math.min(maxBytes, size - offset));
      const { bytesRead } = await handle.read(data, 0, data.byteLength, offset);
      return { name: basename(file.path), index: file.metadata.index, sizeBytes: size, data: data.subarray(0, bytesRead) };
    } finally {
      await handle.close();
    }
  }

  async close(): Promise<void> {
    await this.receiver?.sink.abort();
    this.receiver = null;
  }
}

function sameSnapshot(a: SnapshotMetadata, b: SnapshotMetadata): boolean {
  return a.index === b.index && a.term === b.term;
}

export async function readAll(file: SnapshotFile): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of file.data()) parts.push(part);
  return Buffer.concat(parts);
}

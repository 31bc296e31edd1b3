import { randomBytes } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { mkdir, open, readdir, rename, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { KvError } from "../../errors.js";
import type { SnapshotMetadata } from "../../raft/types.js";
import { assert } from "../../util/assert.js";
import {
  encodeHeader,
  isSnapshotFileName,
  isTemporaryFileName,
  readHeader,
  readVerifiedData,
  snapshotFileName,
  temporaryFileName,
  type SnapshotPointMetadata,
} from "./snapshot-format.js";

export interface SnapshotFile {
  /** sizeBytes = byte length of the data. */
  readonly metadata: SnapshotMetadata;
  readonly path: string;
  /** Data bytes [offset, offset + maxBytes), for streaming to followers. */
  readChunkSync(offset: number, maxBytes: number): Uint8Array;
  /** The data, for restoring the state machine; throws CORRUPT at the end if it does not verify. */
  data(): AsyncIterable<Uint8Array>;
}

export interface SnapshotReceiver {
  write(offset: number, data: Uint8Array): Promise<void>;
  finish(): Promise<SnapshotFile>;
  abort(): Promise<void>;
}

const DEFAULT_KEEP = 2;

class StoredSnapshot implements SnapshotFile {
  constructor(
    readonly metadata: SnapshotMetadata,
    readonly path: string,
    private readonly dataOffset: number,
  ) {}

  readChunkSync(offset: number, maxBytes: number): Uint8Array {
    assert(offset >= 0 && offset <= this.metadata.sizeBytes, `snapshot chunk offset ${offset} out of range`);
    const chunk = new Uint8Array(Math.min(maxBytes, this.metadata.sizeBytes - offset));
    // Opened per call: a follower may take minutes to catch up, and a held descriptor would
    // pin a pruned file; a chunk is large enough that the open costs little.
    const descriptor = openSync(this.path, "r");
    try {
      const bytesRead = readSync(descriptor, chunk, 0, chunk.length, this.dataOffset + offset);
      assert(bytesRead === chunk.length, `snapshot ${this.path} shrank while being read`);
    } finally {
      closeSync(descriptor);
    }
    return chunk;
  }

  data(): AsyncIterable<Uint8Array> {
    return readVerifiedData(this.path);
  }
}

/**
 * Writes one snapshot file under a temporary name: header (with the final length written at
 * the end), data with a running checksum, trailer; then fsync, atomic rename and a directory
 * fsync, so that a crash leaves either the complete file or a temporary leftover.
 */
class SnapshotFileWriter {
  private dataLength = 0;
  private checksum = 0;
  private headerLength: number;

  constructor(
    private readonly file: FileHandle,
    readonly temporaryPath: string,
    private readonly finalPath: string,
    private readonly point: SnapshotPointMetadata,
  ) {
    this.headerLength = encodeHeader(point, 0).length;
  }

  get bytesWritten(): number {
    return this.dataLength;
  }

  async write(data: Uint8Array): Promise<void> {
    await this.file.write(data, 0, data.length, this.headerLength + this.dataLength);
    this.checksum = crc32(data, this.checksum);
    this.dataLength += data.length;
  }

  async finish(): Promise<SnapshotFile> {
    const header = encodeHeader(this.point, this.dataLength);
    assert(header.length === this.headerLength, "snapshot header length changed");
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32BE(this.checksum);
    await this.file.write(header, 0, header.length, 0);
    await this.file.write(trailer, 0, trailer.length, this.headerLength + this.dataLength);
    await this.file.sync();
    await this.file.close();
    await rename(this.temporaryPath, this.finalPath);
    return new StoredSnapshot({ ...this.point, sizeBytes: this.dataLength }, this.finalPath, this.headerLength);
  }

  async abort(): Promise<void> {
    await this.file.close().catch(() => undefined);
    await rm(this.temporaryPath, { force: true });
  }
}

export class SnapshotStore {
  /** Temporary files being written by this store; everything else temporary is a leftover. */
  private readonly activeTemporaryPaths = new Set<string>();

  private constructor(
    private readonly directory: string,
    private readonly keep: number,
  ) {}

  get directoryPath(): string {
    return this.directory;
  }

  static async open(directory: string, options: { readonly keep?: number } = {}): Promise<SnapshotStore> {
    const keep = options.keep ?? DEFAULT_KEEP;
    assert(Number.isInteger(keep) && keep >= 1, "keep must be a positive integer");
    await mkdir(directory, { recursive: true });
    return new SnapshotStore(directory, keep);
  }

  /** Writes a snapshot stream: temp file, fsync, atomic rename, directory fsync, prune. */
  async save(metadata: SnapshotPointMetadata, data: AsyncIterable<Uint8Array>): Promise<SnapshotFile> {
    const writer = await this.createWriter(metadata);
    try {
      for await (const chunk of data) await writer.write(chunk);
    } catch (error) {
      await this.abandon(writer);
      throw error;
    }
    return this.complete(writer);
  }

  /**
   * The newest snapshot, fully verified. A corrupt newest snapshot is an error, never a reason
   * to fall back to an older one: that would serve state older than what was acknowledged.
   */
  async latest(): Promise<SnapshotFile | null> {
    const names = await this.listNames();
    await this.removeLeftovers(names);
    const newest = names.filter(isSnapshotFileName).sort().at(-1);
    if (newest === undefined) return null;
    return openVerified(join(this.directory, newest));
  }

  /**
   * Removes temporary files no writer of this store is using: what a crash or a failed write
   * left behind. Runs at start (latest) and after a failed snapshot, so that a disk that keeps
   * failing is not filled with half-written files.
   */
  async removeTemporaryFiles(): Promise<void> {
    await this.removeLeftovers(await this.listNames());
  }

  /** An incoming snapshot from the leader, chunk by chunk with offsets contiguous from 0. */
  beginReceive(metadata: SnapshotMetadata): SnapshotReceiver {
    return new IncomingSnapshot(metadata, {
      create: () => this.createWriter(metadata),
      complete: (writer) => this.complete(writer),
      abandon: (writer) => this.abandon(writer),
    });
  }

  private async createWriter(point: SnapshotPointMetadata): Promise<SnapshotFileWriter> {
    const finalName = snapshotFileName(point.index, point.term);
    const temporaryPath = join(this.directory, temporaryFileName(finalName, randomBytes(6).toString("hex")));
    const file = await open(temporaryPath, "wx");
    this.activeTemporaryPaths.add(temporaryPath);
    return new SnapshotFileWriter(file, temporaryPath, join(this.directory, finalName), point);
  }

  private async complete(writer: SnapshotFileWriter): Promise<SnapshotFile> {
    let snapshot: SnapshotFile;
    try {
      snapshot = await writer.finish();
    } catch (error) {
      await this.abandon(writer);
      throw error;
    } finally {
      this.activeTemporaryPaths.delete(writer.temporaryPath);
    }
    await this.syncDirectory();
    await this.prune(snapshot.path);
    return snapshot;
  }

  private async abandon(writer: SnapshotFileWriter): Promise<void> {
    this.activeTemporaryPaths.delete(writer.temporaryPath);
    await writer.abort();
  }

  private async listNames(): Promise<string[]> {
    return readdir(this.directory);
  }

  private async removeLeftovers(names: readonly string[]): Promise<void> {
    for (const name of names.filter(isTemporaryFileName)) {
      const path = join(this.directory, name);
      if (!this.activeTemporaryPaths.has(path)) await rm(path, { force: true });
    }
  }

  /** Keeps the `keep` newest snapshots, and always the one just written. */
  private async prune(justWritten: string): Promise<void> {
    const names = (await this.listNames()).filter(isSnapshotFileName).sort();
    for (const name of names.slice(0, Math.max(0, names.length - this.keep))) {
      const path = join(this.directory, name);
      if (path !== justWritten) await rm(path, { force: true });
    }
  }

  /** Makes the rename itself durable. */
  private async syncDirectory(): Promise<void> {
    const directory = await open(this.directory, "r");
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }
}

async function openVerified(path: string): Promise<SnapshotFile> {
  // Reading every byte checks the header, the length, the data checksum and the trailer.
  for await (const chunk of readVerifiedData(path)) void chunk;
  const file = await open(path, "r");
  try {
    const { metadata, dataOffset } = await readHeader(file, path);
    return new StoredSnapshot(metadata, path, dataOffset);
  } finally {
    await file.close();
  }
}

/** The store's side of a receive: where the file is created, completed or abandoned. */
interface WriterLifecycle {
  create(): Promise<SnapshotFileWriter>;
  complete(writer: SnapshotFileWriter): Promise<SnapshotFile>;
  abandon(writer: SnapshotFileWriter): Promise<void>;
}

class IncomingSnapshot implements SnapshotReceiver {
  /** Created on the first chunk; a promise so that overlapping calls share one file. */
  private writer: Promise<SnapshotFileWriter> | null = null;

  constructor(
    private readonly metadata: SnapshotMetadata,
    private readonly lifecycle: WriterLifecycle,
  ) {}

  async write(offset: number, data: Uint8Array): Promise<void> {
    const writer = await this.openWriter();
    if (offset !== writer.bytesWritten) {
      throw new KvError("INVALID", `snapshot chunk at offset ${offset}, expected ${writer.bytesWritten}`);
    }
    if (offset + data.length > this.metadata.sizeBytes) {
      throw new KvError("TOO_LARGE", `snapshot chunk ends at ${offset + data.length}, past ${this.metadata.sizeBytes} bytes`);
    }
    await writer.write(data);
  }

  async finish(): Promise<SnapshotFile> {
    const writer = await this.openWriter();
    if (writer.bytesWritten !== this.metadata.sizeBytes) {
      throw new KvError("INVALID", `snapshot incomplete: ${writer.bytesWritten} of ${this.metadata.sizeBytes} bytes`);
    }
    this.writer = null;
    return this.lifecycle.complete(writer);
  }

  async abort(): Promise<void> {
    const pending = this.writer;
    this.writer = null;
    // A writer that failed to be created left no file behind.
    const writer = pending === null ? null : await pending.catch(() => null);
    if (writer !== null) await this.lifecycle.abandon(writer);
  }

  private openWriter(): Promise<SnapshotFileWriter> {
    this.writer ??= this.lifecycle.create();
    return this.writer;
  }
}

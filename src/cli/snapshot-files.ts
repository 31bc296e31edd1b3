import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { KvClient } from "../client/client.js";
import { KvError } from "../errors.js";
import type { Membership } from "../raft/types.js";
import { membershipOf, parsePeers } from "../server/peers.js";
import { readHeader, readVerifiedData } from "../server/storage/snapshot-format.js";
import { DurableLog } from "../server/storage/durable-log.js";
import { SnapshotStore } from "../server/storage/snapshot-store.js";

/** Bytes asked for per snapshotRead: a quarter of the server's 4 MiB cap keeps frames small. */
const DOWNLOAD_CHUNK_BYTES = 1024 * 1024;
/** A newer snapshot (or a new leader's) may replace the file mid-download; start over this often. */
const MAX_DOWNLOAD_ATTEMPTS = 3;

export interface SavedSnapshot {
  readonly path: string;
  /** The snapshot's own file name, which `kv snapshot restore` gives it again. */
  readonly name: string;
  readonly index: number;
  readonly sizeBytes: number;
}

export interface RestoredSnapshot {
  readonly path: string;
  readonly index: number;
  readonly term: number;
  readonly voters: readonly string[];
}

/**
 * `kv snapshot save`: the leader writes a snapshot now, then its newest snapshot file is
 * downloaded to a temporary file beside `path`, verified (header and data checksums), fsynced
 * and renamed over `path`: a crash leaves either the old file or the complete new one.
 */
export async function saveSnapshot(client: KvClient, path: string): Promise<SavedSnapshot> {
  let lastError: unknown = null;
  for (let attempt = 1; attempt <= MAX_DOWNLOAD_ATTEMPTS; attempt++) {
    const { index } = await client.snapshotSave();
    const temporaryPath = `${path}.tmp-${randomBytes(6).toString("hex")}`;
    try {
      const saved = await download(client, temporaryPath, index);
      await verify(temporaryPath);
      await rename(temporaryPath, path);
      await syncDirectory(dirname(path));
      return { ...saved, path };
    } catch (error) {
      await rm(temporaryPath, { force: true });
      if (!(error instanceof SnapshotChanged)) throw error;
      lastError = error;
    }
  }
  throw new KvError("UNAVAILABLE", `the snapshot kept changing during ${MAX_DOWNLOAD_ATTEMPTS} downloads: ${(lastError as Error).message}`);
}

/** The newest file changed under the download: try again with a fresh snapshotSave. */
class SnapshotChanged extends Error {}

async function download(client: KvClient, temporaryPath: string, savedIndex: number): Promise<Omit<SavedSnapshot, "path">> {
  const file = await open(temporaryPath, "wx");
  try {
    let first: { name: string; index: number; sizeBytes: number } | null = null;
    for (let offset = 0; first === null || offset < first.sizeBytes; ) {
      const slice = await client.snapshotRead(offset, DOWNLOAD_CHUNK_BYTES);
      first ??= slice;
      if (slice.name !== first.name || slice.sizeBytes !== first.sizeBytes) throw new SnapshotChanged(`${first.name} was replaced by ${slice.name}`);
      if (first.index < savedIndex) throw new SnapshotChanged(`the newest snapshot covers ${first.index}, older than ${savedIndex}`);
      if (slice.data.length === 0 && offset < slice.sizeBytes) throw new KvError("INVALID", `empty snapshot piece at ${offset} of ${slice.sizeBytes}`);
      await file.write(slice.data, 0, slice.data.length, offset);
      offset += slice.data.length;
    }
    await file.sync();
    return { name: first.name, index: first.index, sizeBytes: first.sizeBytes };
  } finally {
    await file.close();
  }
}

/** Reads every byte: header checksum, data checksum, trailer and length (CORRUPT otherwise). */
async function verify(path: string): Promise<void> {
  for await (const chunk of readVerifiedData(path)) void chunk;
}

/**
 * `kv snapshot restore`: verifies `file`, writes it as `<dataDirectory>/snapshots/<name>` and
 * starts the log after it, so a node started on that directory recovers from it (the snapshot
 * is the whole state). `peers` ("n1=host:port,...") replaces the membership stored in the
 * snapshot, like etcd's `--initial-cluster`, for a cluster restored on other addresses. A data
 * directory that is not empty is refused: restoring over a live log would mix two histories.
 */
export async function restoreSnapshot(file: string, dataDirectory: string, peers?: string): Promise<RestoredSnapshot> {
  await refuseNonEmpty(dataDirectory);
  const point = await snapshotPointOf(file);
  const membership = peers === undefined ? point.membership : membershipOf(parsePeers(peers));
  try {
    const store = await SnapshotStore.open(join(dataDirectory, "snapshots"));
    // save() streams the verified data: a checksum failure aborts it and leaves no file.
    const saved = await store.save({ index: point.index, term: point.term, membership }, readVerifiedData(file));
    await startLogAt(dataDirectory, point.index, point.term);
    return { path: saved.path, index: point.index, term: point.term, voters: membership.voters };
  } catch (error) {
    for (const part of ["snapshots", "log"]) await rm(join(dataDirectory, part), { recursive: true, force: true });
    throw error;
  }
}

/**
 * The log of a restored node starts right after the snapshot, as a follower's does after an
 * InstallSnapshot: the snapshot point recorded and the hard state at the snapshot's term, so
 * the node's next term and entries follow the snapshot's (like etcdutl writing a fresh WAL).
 */
async function startLogAt(dataDirectory: string, index: number, term: number): Promise<void> {
  const log = await DurableLog.open(join(dataDirectory, "log"), { fsync: "always" });
  try {
    await log.resetToSnapshot(index, term, { term, vote: null, commit: index });
  } finally {
    await log.close();
  }
}

async function snapshotPointOf(file: string): Promise<{ index: number; term: number; membership: Membership }> {
  const handle = await open(file, "r").catch((error: Error) => {
    throw new KvError("NOT_FOUND", `cannot open ${file}: ${error.message}`);
  });
  try {
    return (await readHeader(handle, basename(file))).metadata;
  } finally {
    await handle.close();
  }
}

async function refuseNonEmpty(dataDirectory: string): Promise<void> {
  const entries = await readdir(dataDirectory).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
  if (entries.length > 0) throw new KvError("INVALID", `data directory ${dataDirectory} is not empty; restore needs a fresh one`);
  await mkdir(dataDirectory, { recursive: true });
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

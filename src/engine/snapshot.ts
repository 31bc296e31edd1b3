import { crc32 } from "node:zlib";
import { isErrorCode, KvError } from "../errors.js";
import { decode, encode } from "./codec.js";
import { BUCKET_COUNT, bucketOf } from "./hash.js";
import type { LockRecord, LockResult } from "./locks.js";
import type { Outcome } from "./outcome.js";
import type { SessionRecord } from "./sessions.js";
import type { Entry } from "./store.js";
import type { Value, ValueMap } from "./value.js";

/**
 * Snapshot stream. Each chunk is `[length u32][crc32 u32][msgpack [sequence, kind, payload]]`
 * (big-endian; `length` counts the checksum and the body). The length makes the stream
 * self-delimiting: files and networks hand it back in pieces of their own size.
 * Chunks: one header (format version, applied index and term, log time), entries, locks,
 * sessions, one trailer with the counts. The sequence number catches reordered or missing
 * chunks, the checksum flipped bytes, the trailer truncation.
 *
 * Entries are written bucket by bucket (a fixed number of buckets, independent of the shard
 * count) and sorted by stored key inside each bucket; locks sorted by name; sessions in their
 * activity order (which is itself replicated state). So the same state gives the same bytes on
 * every replica, whatever its shard count.
 */
export const SNAPSHOT_FORMAT_VERSION = 1;

enum ChunkKind {
  Header = 0,
  Entries = 1,
  Locks = 2,
  Sessions = 3,
  Trailer = 4,
}

/** Bounds on the work done between two yields to the event loop. */
const ENTRIES_PER_CHUNK = 2048;
const TARGET_CHUNK_BYTES = 1024 * 1024;
const RECORDS_PER_CHUNK = 1024;
const ENTRIES_COLLECTED_PER_STEP = 16_384;
const CHECKSUM_BYTES = 4;
const LENGTH_BYTES = 4;
/** Largest chunk a reader accepts: one chunk holds at most one value over the 1 MiB target. */
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

export interface SnapshotHeader {
  readonly appliedIndex: number;
  readonly appliedTerm: number;
  readonly now: number;
}

/** What `Engine.snapshot()` freezes synchronously; see CopyOnWriteMap. */
export interface SnapshotImage extends SnapshotHeader {
  readonly shards: readonly ReadonlyMap<string, Entry>[];
  readonly locks: ReadonlyMap<string, LockRecord>;
  readonly sessions: ReadonlyMap<bigint, SessionRecord>;
}

export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export async function* writeSnapshot(image: SnapshotImage): AsyncGenerator<Uint8Array, void, undefined> {
  let sequence = 0;
  const chunk = (kind: ChunkKind, payload: unknown): Uint8Array => frame([sequence++, kind, payload]);
  yield chunk(ChunkKind.Header, [SNAPSHOT_FORMAT_VERSION, image.appliedIndex, image.appliedTerm, image.now]);
  const buckets = await collectBuckets(image.shards);
  let entryCount = 0;
  for await (const batch of entryBatches(buckets)) {
    entryCount += batch.length;
    yield chunk(ChunkKind.Entries, batch);
  }
  const locks = [...image.locks.values()].sort((left, right) => compareStrings(left.name, right.name)).map(encodeLock);
  for (const batch of batches(locks)) {
    await nextTurn();
    yield chunk(ChunkKind.Locks, batch);
  }
  const sessions = [...image.sessions.values()].map(encodeSession);
  for (const batch of batches(sessions)) {
    await nextTurn();
    yield chunk(ChunkKind.Sessions, batch);
  }
  yield chunk(ChunkKind.Trailer, [entryCount, locks.length, sessions.length]);
}

function frame(body: unknown): Uint8Array {
  const encoded = encode(body);
  const chunk = new Uint8Array(LENGTH_BYTES + CHECKSUM_BYTES + encoded.byteLength);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, CHECKSUM_BYTES + encoded.byteLength);
  view.setUint32(LENGTH_BYTES, crc32(encoded));
  chunk.set(encoded, LENGTH_BYTES + CHECKSUM_BYTES);
  return chunk;
}

/**
 * Cuts a byte stream, arriving in pieces of any size, back into the writer's chunks. Pieces
 * are joined only once a whole chunk is there, so each byte is copied at most once.
 */
class ChunkReassembler {
  private parts: Uint8Array[] = [];
  private bytes = 0;

  push(piece: Uint8Array): Uint8Array[] {
    this.parts.push(piece);
    this.bytes += piece.byteLength;
    const chunks: Uint8Array[] = [];
    for (let chunk = this.next(); chunk !== null; chunk = this.next()) chunks.push(chunk);
    return chunks;
  }

  get leftoverBytes(): number {
    return this.bytes;
  }

  private next(): Uint8Array | null {
    if (this.bytes < LENGTH_BYTES) return null;
    const head = this.flatten();
    const length = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(0);
    if (length > MAX_CHUNK_BYTES) throw corrupt(`chunk length ${length} exceeds ${MAX_CHUNK_BYTES}`);
    if (this.bytes < LENGTH_BYTES + length) return null;
    const rest = head.subarray(LENGTH_BYTES + length);
    this.parts = rest.byteLength > 0 ? [rest] : [];
    this.bytes = rest.byteLength;
    return head.subarray(LENGTH_BYTES, LENGTH_BYTES + length);
  }

  private flatten(): Uint8Array {
    const joined = this.parts.length === 1 ? (this.parts[0] as Uint8Array) : Buffer.concat(this.parts);
    this.parts = [joined];
    return joined;
  }
}

/** Groups entries by bucket, a bounded number per step. */
async function collectBuckets(shards: readonly ReadonlyMap<string, Entry>[]): Promise<Entry[][]> {
  const buckets = Array.from({ length: BUCKET_COUNT }, (): Entry[] => []);
  let sinceYield = 0;
  for (const shard of shards) {
    for (const entry of shard.values()) {
      (buckets[entry.bucket] as Entry[]).push(entry);
      if (++sinceYield >= ENTRIES_COLLECTED_PER_STEP) {
        sinceYield = 0;
        await nextTurn();
      }
    }
  }
  return buckets;
}

async function* entryBatches(buckets: Entry[][]): AsyncGenerator<unknown[], void, undefined> {
  let batch: unknown[] = [];
  let batchBytes = 0;
  for (const bucket of buckets) {
    bucket.sort((left, right) => compareStrings(left.storedKey, right.storedKey));
    for (const entry of bucket) {
      batch.push(encodeEntry(entry));
      batchBytes += entry.size + entry.storedKey.length;
      if (batch.length >= ENTRIES_PER_CHUNK || batchBytes >= TARGET_CHUNK_BYTES) {
        await nextTurn();
        yield batch;
        batch = [];
        batchBytes = 0;
      }
    }
  }
  if (batch.length > 0) yield batch;
}

function* batches<T>(items: readonly T[]): IterableIterator<T[]> {
  for (let start = 0; start < items.length; start += RECORDS_PER_CHUNK) yield items.slice(start, start + RECORDS_PER_CHUNK);
}

function compareStrings(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0;
}

function encodeEntry(entry: Entry): unknown[] {
  const { storedKey, value, version, createVersion, createdAt, updatedAt, expiresAt, size, metadata } = entry;
  return [storedKey, value, version, createVersion, createdAt, updatedAt, expiresAt, size, metadata];
}

function encodeLock(record: LockRecord): unknown[] {
  return [record.name, record.owner, record.token, record.expiresAt];
}

function encodeSession(record: SessionRecord): unknown[] {
  const results = [...record.results].map(([sequence, outcome]) => [sequence, encodeOutcome(outcome)]);
  return [record.clientId, record.lastActiveAt, record.acknowledged, results];
}

enum OutcomeTag {
  Value = 0,
  Error = 1,
  Lock = 2,
}

/** Recorded results round-trip exactly: a lock result is an object, which msgpack would turn into a Map. */
function encodeOutcome(outcome: Outcome<unknown>): unknown[] {
  if (!outcome.ok) return [OutcomeTag.Error, outcome.error.code, outcome.error.message, outcome.error.keys ?? null];
  if (isLockResult(outcome.value)) return [OutcomeTag.Lock, outcome.value.acquired, outcome.value.token];
  return [OutcomeTag.Value, outcome.value];
}

function isLockResult(value: unknown): value is LockResult {
  return typeof value === "object" && value !== null && "acquired" in value && "token" in value;
}

// ---- Reading -----------------------------------------------------------------------------

export interface SnapshotSink {
  entry(entry: Entry): void;
  lock(record: LockRecord): void;
  session(record: SessionRecord): void;
}

/**
 * Reads and checks a snapshot stream, handing every record to `sink` as it goes (so memory is
 * not doubled). Any damage is a KvError CORRUPT naming the chunk; the caller must then discard
 * what the sink received.
 */
export async function readSnapshot(chunks: AsyncIterable<Uint8Array>, sink: SnapshotSink): Promise<SnapshotHeader> {
  const reader = new SnapshotReader(sink);
  const reassembler = new ChunkReassembler();
  for await (const piece of chunks) {
    for (const chunk of reassembler.push(piece)) reader.read(chunk);
    await nextTurn();
  }
  if (reassembler.leftoverBytes > 0) throw corrupt(`snapshot ends inside a chunk (${reassembler.leftoverBytes} bytes left over)`);
  return reader.finish();
}

class SnapshotReader {
  private sequence = 0;
  private lastKind: ChunkKind | undefined;
  private header: SnapshotHeader | undefined;
  private readonly counts = [0, 0, 0];
  private complete = false;

  constructor(private readonly sink: SnapshotSink) {}

  read(chunk: Uint8Array): void {
    const where = `snapshot chunk ${this.sequence}`;
    try {
      const [kind, payload] = this.open(chunk);
      this.accept(kind, payload);
    } catch (error) {
      if (error instanceof KvError && error.code === "CORRUPT") throw error;
      throw new KvError("CORRUPT", `${where}: ${(error as Error).message}`);
    }
  }

  finish(): SnapshotHeader {
    if (!this.complete || this.header === undefined) {
      throw new KvError("CORRUPT", `snapshot truncated after ${this.sequence} chunks: no trailer`);
    }
    return this.header;
  }

  private open(chunk: Uint8Array): [ChunkKind, unknown] {
    if (this.complete) throw corrupt("data after the trailer");
    if (chunk.byteLength <= CHECKSUM_BYTES) throw corrupt("chunk too short");
    const body = chunk.subarray(CHECKSUM_BYTES);
    const expected = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength).getUint32(0);
    if (crc32(body) !== expected) throw corrupt("checksum mismatch");
    const decoded = decode(body);
    if (!Array.isArray(decoded) || decoded.length !== 3) throw corrupt("not a chunk");
    const [sequence, kind, payload] = decoded as [unknown, unknown, unknown];
    if (sequence !== this.sequence) throw corrupt(`out of order: found sequence ${String(sequence)}`);
    if (typeof kind !== "number" || kind < ChunkKind.Header || kind > ChunkKind.Trailer) throw corrupt("unknown chunk kind");
    const inOrder = this.lastKind === undefined ? kind === ChunkKind.Header : kind > ChunkKind.Header && kind >= this.lastKind;
    if (!inOrder) throw corrupt(`chunk kind ${kind} out of place`);
    this.sequence++;
    this.lastKind = kind;
    return [kind, payload];
  }

  private accept(kind: ChunkKind, payload: unknown): void {
    switch (kind) {
      case ChunkKind.Header:
        this.header = decodeHeader(payload);
        return;
      case ChunkKind.Entries:
      case ChunkKind.Locks:
      case ChunkKind.Sessions:
        for (const item of list(payload)) this.record(kind, item);
        return;
      case ChunkKind.Trailer:
        this.checkTrailer(payload);
        this.complete = true;
        return;
    }
  }

  private record(kind: ChunkKind.Entries | ChunkKind.Locks | ChunkKind.Sessions, item: unknown): void {
    this.counts[kind - 1] = (this.counts[kind - 1] ?? 0) + 1;
    if (kind === ChunkKind.Entries) this.sink.entry(decodeEntry(item));
    else if (kind === ChunkKind.Locks) this.sink.lock(decodeLock(item));
    else this.sink.session(decodeSession(item));
  }

  private checkTrailer(payload: unknown): void {
    const counts = list(payload);
    if (counts.length !== 3 || counts.some((count, index) => count !== this.counts[index])) {
      throw corrupt(`trailer counts ${JSON.stringify(counts)} do not match the records read ${JSON.stringify(this.counts)}`);
    }
  }
}

function corrupt(message: string): KvError {
  return new KvError("CORRUPT", message);
}

function list(payload: unknown): unknown[] {
  if (!Array.isArray(payload)) throw corrupt("expected an array");
  return payload;
}

function number(value: unknown): number {
  if (typeof value !== "number") throw corrupt("expected a number");
  return value;
}

function bigint(value: unknown): bigint {
  if (typeof value !== "bigint") throw corrupt("expected an Int");
  return value;
}

function string(value: unknown): string {
  if (typeof value !== "string") throw corrupt("expected a string");
  return value;
}

function decodeHeader(payload: unknown): SnapshotHeader {
  const [version, appliedIndex, appliedTerm, now] = list(payload);
  if (version !== SNAPSHOT_FORMAT_VERSION) throw corrupt(`unsupported snapshot format ${String(version)}`);
  return { appliedIndex: number(appliedIndex), appliedTerm: number(appliedTerm), now: number(now) };
}

function decodeEntry(item: unknown): Entry {
  const fields = list(item);
  if (fields.length !== 9) throw corrupt("malformed entry");
  const [storedKey, value, version, createVersion, createdAt, updatedAt, expiresAt, size, metadata] = fields;
  if (metadata !== null && !(metadata instanceof Map)) throw corrupt("malformed entry metadata");
  const updated = number(updatedAt);
  return {
    storedKey: string(storedKey),
    bucket: bucketOf(string(storedKey)),
    value: value as Value,
    version: number(version),
    createVersion: number(createVersion),
    createdAt: number(createdAt),
    updatedAt: updated,
    expiresAt: expiresAt === null ? null : number(expiresAt),
    size: number(size),
    metadata: metadata as ValueMap | null,
    lastAccessedAt: updated,
  };
}

function decodeLock(item: unknown): LockRecord {
  const [name, owner, token, expiresAt] = list(item);
  return { name: string(name), owner: string(owner), token: bigint(token), expiresAt: number(expiresAt) };
}

function decodeSession(item: unknown): SessionRecord {
  const [clientId, lastActiveAt, acknowledged, results] = list(item);
  const recorded = new Map<number, Outcome<unknown>>();
  for (const pair of list(results)) {
    const [sequence, outcome] = list(pair);
    recorded.set(number(sequence), decodeOutcome(outcome));
  }
  return { clientId: bigint(clientId), lastActiveAt: number(lastActiveAt), acknowledged: number(acknowledged), results: recorded };
}

function decodeOutcome(encoded: unknown): Outcome<unknown> {
  const [tag, first, second, third] = list(encoded);
  if (tag === OutcomeTag.Value) return { ok: true, value: first };
  if (tag === OutcomeTag.Lock) {
    if (typeof first !== "boolean" || (second !== null && typeof second !== "bigint")) throw corrupt("malformed lock result");
    return { ok: true, value: { acquired: first, token: second } satisfies LockResult };
  }
  if (tag !== OutcomeTag.Error || !isErrorCode(first)) throw corrupt("malformed recorded outcome");
  const message = string(second);
  if (third === null) return { ok: false, error: { code: first, message } };
  return { ok: false, error: { code: first, message, keys: list(third).map(string) } };
}

import { open, type FileHandle } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { decode, encode } from "../../engine/codec.js";
import type { KvError } from "../../errors.js";
import type { SnapshotMetadata } from "../../raft/types.js";
import { corrupt, expectCount, membershipFromFields, membershipToFields } from "./record-codec.js";

/**
 * Snapshot file layout (all integers big-endian):
 *
 *   magic "DBKVSNAP" | format version u32 | metadata length u32 | metadata (msgpack
 *   [index, term, membership]) | data length u64 | crc32 of everything before it u32
 *   data
 *   crc32 of the data u32
 *
 * The header has its own checksum so that a damaged index, term or length is caught before the
 * data is trusted; the data length lets a truncated file be told apart from a damaged one.
 */
const MAGIC = Buffer.from("DBKVSNAP", "ascii");
const FORMAT_VERSION = 1;
const FIXED_PREFIX_BYTES = MAGIC.length + 4 + 4;
const LENGTH_AND_CHECKSUM_BYTES = 8 + 4;
export const TRAILER_BYTES = 4;
/** Membership of even a large cluster is a few KiB; anything beyond is a damaged length. */
const MAX_METADATA_BYTES = 1024 * 1024;
/** Read size when streaming or verifying the data. */
export const READ_CHUNK_BYTES = 256 * 1024;

export type SnapshotPointMetadata = Omit<SnapshotMetadata, "sizeBytes">;

const FILE_NAME_PATTERN = /^snapshot-([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const TEMPORARY_MARKER = ".tmp-";

/** Fixed-width hex, so that sorting names sorts snapshots by index, then term. */
export function snapshotFileName(index: number, term: number): string {
  const hex = (value: number): string => value.toString(16).padStart(16, "0");
  return `snapshot-${hex(index)}-${hex(term)}.snap`;
}

export function isSnapshotFileName(name: string): boolean {
  return FILE_NAME_PATTERN.test(name);
}

export function temporaryFileName(finalName: string, unique: string): string {
  return `${finalName}${TEMPORARY_MARKER}${unique}`;
}

export function isTemporaryFileName(name: string): boolean {
  return name.startsWith("snapshot-") && name.includes(TEMPORARY_MARKER);
}

export function encodeHeader(point: SnapshotPointMetadata, dataLength: number): Uint8Array {
  const metadata = encode([point.index, point.term, membershipToFields(point.membership)]);
  const header = Buffer.alloc(FIXED_PREFIX_BYTES + metadata.length + LENGTH_AND_CHECKSUM_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(FORMAT_VERSION, MAGIC.length);
  header.writeUInt32BE(metadata.length, MAGIC.length + 4);
  header.set(metadata, FIXED_PREFIX_BYTES);
  const lengthOffset = FIXED_PREFIX_BYTES + metadata.length;
  header.writeBigUInt64BE(BigInt(dataLength), lengthOffset);
  header.writeUInt32BE(crc32(header.subarray(0, lengthOffset + 8)), lengthOffset + 8);
  return header;
}

export interface ParsedHeader {
  readonly metadata: SnapshotMetadata;
  /** File offset of the first data byte. */
  readonly dataOffset: number;
}

export function corruptAt(path: string, offset: number, reason: string): KvError {
  return corrupt(`snapshot file ${path} at offset ${offset}`, reason);
}

async function readExactly(file: FileHandle, path: string, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, position);
  if (bytesRead < length) throw corruptAt(path, position + bytesRead, `file ends, ${length} bytes expected`);
  return buffer;
}

export async function readHeader(file: FileHandle, path: string): Promise<ParsedHeader> {
  const prefix = await readExactly(file, path, 0, FIXED_PREFIX_BYTES);
  if (!prefix.subarray(0, MAGIC.length).equals(MAGIC)) throw corruptAt(path, 0, "not a snapshot file (bad magic)");
  const version = prefix.readUInt32BE(MAGIC.length);
  if (version !== FORMAT_VERSION) throw corruptAt(path, MAGIC.length, `unknown format version ${version}`);
  const metadataLength = prefix.readUInt32BE(MAGIC.length + 4);
  if (metadataLength > MAX_METADATA_BYTES) throw corruptAt(path, MAGIC.length + 4, `metadata length ${metadataLength} is implausible`);
  const rest = await readExactly(file, path, FIXED_PREFIX_BYTES, metadataLength + LENGTH_AND_CHECKSUM_BYTES);
  const checksumOffset = FIXED_PREFIX_BYTES + metadataLength + 8;
  const computed = crc32(rest.subarray(0, metadataLength + 8), crc32(prefix));
  if (computed !== rest.readUInt32BE(metadataLength + 8)) throw corruptAt(path, checksumOffset, "header checksum mismatch");
  const dataLength = Number(rest.readBigUInt64BE(metadataLength));
  const metadata = decodeMetadata(rest.subarray(0, metadataLength), path, dataLength);
  return { metadata, dataOffset: checksumOffset + 4 };
}

function decodeMetadata(bytes: Uint8Array, path: string, sizeBytes: number): SnapshotMetadata {
  const what = `snapshot file ${path} metadata`;
  let fields: unknown;
  try {
    fields = decode(bytes);
  } catch (error) {
    throw corrupt(what, (error as Error).message);
  }
  if (!Array.isArray(fields)) throw corrupt(what, "not an array");
  const [index, term, membership] = fields as unknown[];
  return {
    index: expectCount(index, what, "index"),
    term: expectCount(term, what, "term"),
    membership: membershipFromFields(membership, what),
    sizeBytes: expectCount(sizeBytes, what, "data length"),
  };
}

/**
 * Streams the data section and checks the trailer checksum after the last byte: a consumer
 * that reaches the end without an error has read exactly what was written.
 */
export async function* readVerifiedData(path: string): AsyncGenerator<Uint8Array> {
  const file = await open(path, "r");
  try {
    const { metadata, dataOffset } = await readHeader(file, path);
    const dataEnd = dataOffset + metadata.sizeBytes;
    let checksum = 0;
    for (let position = dataOffset; position < dataEnd; ) {
      const chunk = await readExactly(file, path, position, Math.min(READ_CHUNK_BYTES, dataEnd - position));
      checksum = crc32(chunk, checksum);
      position += chunk.length;
      yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
    const trailer = await readExactly(file, path, dataEnd, TRAILER_BYTES);
    if (trailer.readUInt32BE(0) !== checksum) {
      throw corruptAt(path, dataOffset, `data checksum mismatch over ${metadata.sizeBytes} bytes`);
    }
    const { size } = await file.stat();
    if (size !== dataEnd + TRAILER_BYTES) throw corruptAt(path, dataEnd + TRAILER_BYTES, "unexpected bytes after the trailer");
  } finally {
    await file.close();
  }
}

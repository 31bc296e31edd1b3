import { open, readdir, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { KvError } from "../../errors.js";
import { crc32c, maskCrc } from "./crc32c.js";

/**
 * Verifies LevelDB's own write-ahead files (`NNNNNN.log`) before LevelDB opens the directory.
 *
 * Why: LevelDB's recovery (paranoid_checks off, and classic-level exposes neither
 * paranoid_checks nor verify_checksums) drops a record whose checksum fails, together with the
 * rest of its 32 KiB block, and reports it only in its own LOG file: the node would start and
 * serve with acknowledged writes missing. Here a damaged record fails the start instead.
 *
 * Format (leveldb/doc/log_format.md): the file is a sequence of 32 KiB blocks; a block holds
 * physical records `[masked crc32c: u32 LE][length: u16 LE][type: u8][payload]`, the crc over
 * the type byte and the payload; fewer than 7 bytes left in a block are a zero trailer. A
 * logical record (one WriteBatch) is one FULL record or FIRST, MIDDLE*, LAST.
 */

export const LOG_BLOCK_BYTES = 32 * 1024;
const HEADER_BYTES = 7;
/** A WriteBatch starts with its sequence number (8 bytes) and its count (4 bytes). */
const MIN_BATCH_BYTES = 12;
/** Whole blocks read at a time. */
const READ_BLOCKS = 32;
const LOG_FILE_NAME = /^(\d+)\.log$/;

const RecordType = { full: 1, first: 2, middle: 3, last: 4 } as const;

export interface LogFileCheck {
  readonly path: string;
  readonly bytes: number;
  /** Complete logical records (write batches). */
  readonly records: number;
  /** Bytes at the end of the newest file that hold no complete record: a torn tail or zero padding. */
  readonly tornTailBytes: number;
}

export interface LogCheckReport {
  readonly files: readonly LogFileCheck[];
}

/**
 * Checks every `*.log` file of a LevelDB directory, oldest first. Throws CORRUPT naming the
 * file, the byte offset and what is wrong at the first damaged or malformed record.
 */
export async function checkLevelDbLogs(directory: string): Promise<LogCheckReport> {
  const numbered = (await readdir(directory).catch(ignoreMissing))
    .map((name) => ({ name, number: LOG_FILE_NAME.exec(name)?.[1] }))
    .filter((file): file is { name: string; number: string } => file.number !== undefined)
    .sort((left, right) => Number(left.number) - Number(right.number));
  const files: LogFileCheck[] = [];
  for (const [position, file] of numbered.entries()) {
    files.push(await checkLogFile(join(directory, file.name), position === numbered.length - 1));
  }
  return { files };
}

function ignoreMissing(error: NodeJS.ErrnoException): string[] {
  if (error.code === "ENOENT") return [];
  throw error;
}

/** Streams one file through a LogFileVerifier, READ_BLOCKS blocks at a time. */
export async function checkLogFile(path: string, newest: boolean): Promise<LogFileCheck> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const verifier = new LogFileVerifier(path, newest, size);
    const buffer = Buffer.alloc(READ_BLOCKS * LOG_BLOCK_BYTES);
    for (let offset = 0; offset < size; offset += buffer.length) {
      const chunk = buffer.subarray(0, Math.min(buffer.length, size - offset));
      await readFully(file, chunk, offset, path);
      for (let start = 0; start < chunk.length; start += LOG_BLOCK_BYTES) {
        verifier.verifyBlock(chunk.subarray(start, start + LOG_BLOCK_BYTES), offset + start);
      }
    }
    return verifier.finish();
  } finally {
    await file.close();
  }
}

/** Block boundaries depend on every read filling its buffer: a short read is read on. */
async function readFully(file: FileHandle, target: Buffer, position: number, path: string): Promise<void> {
  for (let filled = 0; filled < target.length; ) {
    const { bytesRead } = await file.read(target, filled, target.length - filled, position + filled);
    if (bytesRead === 0) throw new KvError("CORRUPT", `LevelDB log ${path} shrank while being checked`);
    filled += bytesRead;
  }
}

/**
 * Verifies one log file block by block. Only the newest file may end in a record cut short
 * (or in zeros): that is a write torn by a crash, which was never acknowledged (the write it
 * belonged to had not returned from its fsync), and LevelDB's recovery rightly ignores it.
 * Anywhere else, and for any checksum mismatch at all (even in the last record: a flipped bit
 * there looks exactly like a record whose tail never reached the disk, and only the first is
 * an acknowledged write), the file is damaged.
 *
 * One false alarm is accepted: a crash during LevelDB's own recovery, after it created a new
 * log file but before it deleted the recovered one, leaves an older file with a torn tail.
 * The node then refuses to start and `--rejoin` recovers it; no write is lost either way.
 */
export class LogFileVerifier {
  private records = 0;
  /** Offset of the FIRST record of the logical record being reassembled, and its length so far. */
  private fragment: { readonly offset: number; length: number } | null = null;
  /** Where a zero-filled tail began (newest file only); any later non-zero byte is damage. */
  private zeroTailOffset: number | null = null;
  /** Where the newest file's last complete record ended, once a torn record was found. */
  private tornTailOffset: number | null = null;

  constructor(
    private readonly path: string,
    private readonly newest: boolean,
    private readonly fileBytes: number,
  ) {}

  /** `block` is one whole block, or the shorter last one; `blockOffset` its place in the file. */
  verifyBlock(block: Uint8Array, blockOffset: number): void {
    let position = 0;
    while (position < block.length) {
      const offset = blockOffset + position;
      if (this.zeroTailOffset !== null) {
        this.expectZeros(block.subarray(position), offset, this.zeroTailOffset);
        return;
      }
      const remaining = block.length - position;
      if (remaining < HEADER_BYTES) {
        this.verifyBlockEnd(block.subarray(position), offset);
        return;
      }
      position += this.verifyRecord(block, position, blockOffset);
    }
  }

  finish(): LogFileCheck {
    const fragment = this.fragment;
    if (fragment !== null && this.tornTailOffset === null) {
      if (!this.newest) this.damage(fragment.offset, "the file ends inside a record (FIRST without LAST)");
      this.tornTailOffset = fragment.offset;
    }
    const tailStart = this.tornTailOffset ?? this.zeroTailOffset ?? this.fileBytes;
    return { path: this.path, bytes: this.fileBytes, records: this.records, tornTailBytes: this.fileBytes - tailStart };
  }

  /** Checks the record at `position`; returns its size with the header. */
  private verifyRecord(block: Uint8Array, position: number, blockOffset: number): number {
    const offset = blockOffset + position;
    const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
    const storedCrc = view.getUint32(position, true);
    const length = view.getUint16(position + 4, true);
    const type = block[position + 6] as number;
    if (storedCrc === 0 && length === 0 && type === 0) return this.startZeroTail(offset);
    const end = position + HEADER_BYTES + length;
    if (end > block.length) return this.recordPastBlock(block.length - position, offset, length);
    const payload = block.subarray(position + HEADER_BYTES, end);
    const computedCrc = maskCrc(crc32c(payload, crc32c(Uint8Array.of(type))));
    if (computedCrc !== storedCrc) {
      this.damage(offset, `checksum mismatch (stored ${hex(storedCrc)}, computed ${hex(computedCrc)}) in a record of ${length} bytes`);
    }
    this.assemble(type, length, offset);
    return end - position;
  }

  /** Reassembles logical records from their fragments: FULL, or FIRST MIDDLE* LAST. */
  private assemble(type: number, length: number, offset: number): void {
    const open = this.fragment;
    switch (type) {
      case RecordType.full:
        if (open !== null) this.damage(offset, `a FULL record inside the record begun at ${open.offset}`);
        this.completeRecord(length, offset);
        return;
      case RecordType.first:
        if (open !== null) this.damage(offset, `a FIRST record inside the record begun at ${open.offset}`);
        this.fragment = { offset, length };
        return;
      case RecordType.middle:
      case RecordType.last:
        if (open === null) this.damage(offset, `a ${type === RecordType.last ? "LAST" : "MIDDLE"} record without its FIRST`);
        open.length += length;
        if (type === RecordType.middle) return;
        this.fragment = null;
        this.completeRecord(open.length, open.offset);
        return;
      default:
        this.damage(offset, `unknown record type ${type}`);
    }
  }

  private completeRecord(length: number, offset: number): void {
    if (length < MIN_BATCH_BYTES) this.damage(offset, `a write batch of ${length} bytes (at least ${MIN_BATCH_BYTES} expected)`);
    this.records++;
  }

  /**
   * A record longer than what is left of its block. The writer never emits one, so in a whole
   * block it is malformed; in the file's last, partial block it is a write cut short (only
   * the last block of a file can be partial).
   */
  private recordPastBlock(remaining: number, offset: number, length: number): number {
    const inPartialBlock = (offset + remaining) % LOG_BLOCK_BYTES !== 0;
    if (!(this.newest && inPartialBlock)) this.damage(offset, `a record of ${length} bytes runs past the end of its block`);
    this.tornTailOffset = this.fragment?.offset ?? offset;
    return remaining;
  }

  /** Fewer than 7 bytes: the zero trailer of a whole block, or a header cut short at the file's end. */
  private verifyBlockEnd(rest: Uint8Array, offset: number): void {
    const inWholeBlock = (offset + rest.length) % LOG_BLOCK_BYTES === 0;
    if (inWholeBlock) {
      if (rest.some((byte) => byte !== 0)) this.damage(offset, "a block trailer that is not zero");
      return;
    }
    if (!this.newest) this.damage(offset, "the file ends inside a record header");
    this.tornTailOffset = this.fragment?.offset ?? offset;
  }

  /**
   * A zero header: the newest file may end in zeros (a crash after the file grew but before its
   * data reached the disk). Everything after it must then be zero too. Returns 0: the caller
   * checks the zeros from this very offset.
   */
  private startZeroTail(offset: number): number {
    if (!this.newest) this.damage(offset, "a zero-filled record header");
    this.zeroTailOffset = this.fragment?.offset ?? offset;
    return 0;
  }

  private expectZeros(bytes: Uint8Array, offset: number, tailOffset: number): void {
    const nonZero = bytes.findIndex((byte) => byte !== 0);
    if (nonZero !== -1) this.damage(offset + nonZero, `data after the zero-filled tail that begins at byte ${tailOffset}`);
  }

  private damage(offset: number, reason: string): never {
    const record = this.records + 1;
    throw new KvError(
      "CORRUPT",
      `LevelDB log ${this.path} is damaged at byte ${offset} (block ${Math.floor(offset / LOG_BLOCK_BYTES)}, write batch ${record}): ${reason}`,
    );
  }
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

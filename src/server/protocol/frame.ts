import { KvError } from "../../errors.js";
import { MAX_FRAME_BYTES } from "../../engine/limits.js";
import { assert } from "../../util/assert.js";

/**
 * Frames of the binary protocol (SPEC §6). Requests and responses share one layout:
 *
 *   [kind u8][request id u32 BE][payload length u32 BE][payload]
 *
 * where `kind` is the command code in a request and the status in a response. Sharing the
 * layout lets one encoder and one incremental decoder serve both directions.
 */
export const FRAME_HEADER_BYTES = 9;

/**
 * Room kept in a peer frame for everything around one log entry: the batch and message
 * headers, node ids, terms and indexes, and the entry's checksummed record. Generous on
 * purpose (the fields themselves take a few hundred bytes), so that ids of any sensible length
 * fit.
 */
export const PEER_ENVELOPE_OVERHEAD_BYTES = 64 * 1024;

/**
 * Largest client request payload, and largest log entry: small enough that an AppendEntries
 * frame carrying it alone stays within MAX_FRAME_BYTES, the limit every peer reads. A request
 * just under MAX_FRAME_BYTES would otherwise become an entry no follower accepts, and the
 * leader would resend it forever.
 */
export const MAX_REQUEST_PAYLOAD_BYTES = MAX_FRAME_BYTES - PEER_ENVELOPE_OVERHEAD_BYTES;

/**
 * Default largest client request (`--max-request-bytes`), well below the ceiling above: a
 * request is decoded, validated, encoded as an entry, checksummed and sent to every follower
 * in one go on the event loop. Measured for a 64 MiB mset: about 260 ms to parse and
 * validate, 90 ms to encode the entry, 115 ms to seal its record and 170 ms per follower to
 * encode the AppendEntries - over a second with the log write, longer than an election
 * timeout (500 ms by default), so the leader lost its lead before the entry committed and the
 * retried write churned leaders for good. A quarter of that stays well inside the timeout
 * while fitting any default-size value (8 MiB) with room. etcd keeps its own at 1.5 MiB for
 * the same reason.
 */
export const DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024;

const MAX_U32 = 0xffff_ffff;

export interface Frame {
  /** Command code (request) or status (response). */
  readonly kind: number;
  readonly requestId: number;
  readonly payload: Uint8Array;
}

/**
 * A declared payload length above the limit. The request id is known from the header, so the
 * receiver can still answer that request before closing the connection.
 */
export class FrameTooLargeError extends KvError {
  override name = "FrameTooLargeError";
  readonly requestId: number;
  readonly declaredBytes: number;

  constructor(requestId: number, declaredBytes: number, maxFrameBytes: number) {
    super("TOO_LARGE", `frame payload of ${declaredBytes} bytes exceeds the limit of ${maxFrameBytes} bytes`);
    this.requestId = requestId;
    this.declaredBytes = declaredBytes;
  }
}

export function isValidRequestId(requestId: number): boolean {
  return Number.isInteger(requestId) && requestId >= 0 && requestId <= MAX_U32;
}

/** One allocation per frame: the header and the payload are written side by side. */
export function encodeFrame(kind: number, requestId: number, payload: Uint8Array): Uint8Array {
  assert(Number.isInteger(kind) && kind >= 0 && kind <= 0xff, `frame kind ${kind} is not a u8`);
  assert(isValidRequestId(requestId), `request id ${requestId} is not a u32`);
  assert(payload.length <= MAX_U32, "payload length does not fit a u32");
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER_BYTES);
  view.setUint8(0, kind);
  view.setUint32(1, requestId);
  view.setUint32(5, payload.length);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

export interface FrameHeader {
  readonly kind: number;
  readonly requestId: number;
  readonly payloadBytes: number;
}

export interface FrameDecoderOptions {
  /** Largest payload accepted; a larger declared length fails before anything is allocated. */
  readonly maxFrameBytes?: number;
  /**
   * Asked once per frame, when its header is complete and before its payload is read (a
   * receiver reserves memory for the payload here). False holds the rest of the input, read
   * or still to come, until `resume()` admits the frame.
   */
  readonly admit?: (header: FrameHeader) => boolean;
  /**
   * Frames over `maxFrameBytes` but within `upToBytes` are skipped instead of failing the
   * stream: `onSkipped` hears of the header at once and the payload is discarded as it
   * arrives, never held. A client that did not know the receiver's lower limit then gets an
   * answer and keeps its connection; a length beyond any real frame still fails (garbage).
   */
  readonly skipOversized?: { readonly upToBytes: number; readonly onSkipped: (header: FrameHeader) => void };
}

function readHeader(bytes: Uint8Array, offset: number): FrameHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, FRAME_HEADER_BYTES);
  return { kind: view.getUint8(0), requestId: view.getUint32(1), payloadBytes: view.getUint32(5) };
}

/**
 * Incremental frame decoder, fed arbitrary chunks of a byte stream.
 *
 * Memory: a payload that arrives within one chunk is emitted as a view of that chunk (no
 * copy). A payload split across chunks is gathered as views and copied once, when complete,
 * into a buffer of its exact size. So the decoder holds at most one partial frame, what it
 * holds is what was actually received (a peer that declares 64 MiB and sends 10 bytes costs
 * 10 bytes), and an oversized length prefix is refused before anything is allocated.
 *
 * After a FrameTooLargeError the stream is out of sync for good: the decoder stays failed.
 * (With `skipOversized`, a frame within its bound is skipped instead and the stream goes on.)
 *
 * With an `admit` hook, a frame whose header is refused holds the decoder: the remainder of
 * that chunk and any later chunk are kept (a caller pauses its socket, so that is at most a
 * read's worth) and decoded once `resume()` admits the frame.
 */
export class FrameDecoder {
  private maxPayloadBytes: number;
  private readonly admit: (header: FrameHeader) => boolean;
  private readonly skipOversized: FrameDecoderOptions["skipOversized"];
  /** Payload bytes of a skipped frame still to be discarded. */
  private skipBytes = 0;
  private readonly headerBytes = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  private header: FrameHeader | null = null;
  private payloadParts: Uint8Array[] = [];
  private payloadFilled = 0;
  private failure: FrameTooLargeError | null = null;
  /** A header refused by `admit`, and the input that arrived after it. */
  private waiting: FrameHeader | null = null;
  private heldChunks: Uint8Array[] = [];

  constructor(options: FrameDecoderOptions = {}) {
    this.maxPayloadBytes = checkedLimit(options.maxFrameBytes ?? MAX_FRAME_BYTES);
    this.admit = options.admit ?? (() => true);
    this.skipOversized = options.skipOversized;
  }

  get maxFrameBytes(): number {
    return this.maxPayloadBytes;
  }

  /** Changes the limit for frames whose header has not arrived yet (a link that proved it is a peer). */
  set maxFrameBytes(bytes: number) {
    this.maxPayloadBytes = checkedLimit(bytes);
  }

  /** Bytes received that belong to a frame not yet complete. */
  get pendingBytes(): number {
    return this.header === null ? this.headerFilled : FRAME_HEADER_BYTES + this.payloadFilled;
  }

  /** True while a frame waits for `admit`: input is held, nothing is decoded. */
  get isHeld(): boolean {
    return this.waiting !== null;
  }

  /**
   * Calls `onFrame` for every frame the chunk completes, in stream order. Throws
   * FrameTooLargeError when a header declares too large a payload; frames before it in the same
   * chunk have been delivered by then.
   */
  push(chunk: Uint8Array, onFrame: (frame: Frame) => void): void {
    if (this.failure !== null) throw this.failure;
    if (this.waiting !== null) {
      this.heldChunks.push(chunk);
      return;
    }
    this.consume(chunk, 0, onFrame);
  }

  /**
   * Asks `admit` again for the held frame; once admitted, decodes the held input. Returns
   * false while the frame is still refused (or is refused again, or a later one is).
   */
  resume(onFrame: (frame: Frame) => void): boolean {
    const header = this.waiting;
    if (header === null) return true;
    if (!this.admit(header)) return false;
    this.waiting = null;
    this.startAdmittedPayload(header, onFrame);
    const held = this.heldChunks;
    this.heldChunks = [];
    for (const [index, chunk] of held.entries()) {
      this.consume(chunk, 0, onFrame);
      if (this.waiting !== null) {
        this.heldChunks.push(...held.slice(index + 1));
        return false;
      }
    }
    return true;
  }

  private consume(chunk: Uint8Array, start: number, onFrame: (frame: Frame) => void): void {
    let offset = start;
    while (offset < chunk.length) {
      if (this.skipBytes > 0) offset = this.skip(chunk, offset);
      else offset = this.header === null ? this.consumeHeader(chunk, offset, onFrame) : this.consumePayload(chunk, offset, onFrame);
      if (this.waiting !== null) {
        if (offset < chunk.length) this.heldChunks.push(chunk.subarray(offset));
        return;
      }
    }
  }

  private consumeHeader(chunk: Uint8Array, offset: number, onFrame: (frame: Frame) => void): number {
    if (this.headerFilled === 0 && chunk.length - offset >= FRAME_HEADER_BYTES) {
      return this.consumeWholeFrame(chunk, offset, onFrame);
    }
    const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, chunk.length - offset);
    this.headerBytes.set(chunk.subarray(offset, offset + take), this.headerFilled);
    this.headerFilled += take;
    if (this.headerFilled === FRAME_HEADER_BYTES) {
      this.headerFilled = 0;
      this.startPayload(readHeader(this.headerBytes, 0), onFrame);
    }
    return offset + take;
  }

  /** Fast path: header at hand in the chunk; emit a view when the payload is there too. */
  private consumeWholeFrame(chunk: Uint8Array, offset: number, onFrame: (frame: Frame) => void): number {
    const header = readHeader(chunk, offset);
    const payloadStart = offset + FRAME_HEADER_BYTES;
    if (this.decide(header) !== "accept") return payloadStart;
    const payloadEnd = payloadStart + header.payloadBytes;
    if (payloadEnd <= chunk.length) {
      onFrame({ kind: header.kind, requestId: header.requestId, payload: chunk.subarray(payloadStart, payloadEnd) });
      return payloadEnd;
    }
    this.startAdmittedPayload(header, onFrame);
    return payloadStart;
  }

  private startPayload(header: FrameHeader, onFrame: (frame: Frame) => void): void {
    if (this.decide(header) === "accept") this.startAdmittedPayload(header, onFrame);
  }

  /**
   * What to do with a frame whose header is complete: an oversized one is skipped or fails the
   * stream; otherwise `admit` is asked, and a refused header is kept until `resume()`.
   */
  private decide(header: FrameHeader): "accept" | "skip" | "hold" {
    if (header.payloadBytes > this.maxPayloadBytes && this.skipOversized !== undefined && header.payloadBytes <= this.skipOversized.upToBytes) {
      this.skipBytes = header.payloadBytes;
      this.skipOversized.onSkipped(header);
      return "skip";
    }
    this.checkLength(header);
    if (this.admit(header)) return "accept";
    this.waiting = header;
    return "hold";
  }

  private skip(chunk: Uint8Array, offset: number): number {
    const take = Math.min(this.skipBytes, chunk.length - offset);
    this.skipBytes -= take;
    return offset + take;
  }

  private startAdmittedPayload(header: FrameHeader, onFrame: (frame: Frame) => void): void {
    if (header.payloadBytes === 0) {
      onFrame({ kind: header.kind, requestId: header.requestId, payload: new Uint8Array(0) });
      return;
    }
    this.header = header;
  }

  private consumePayload(chunk: Uint8Array, offset: number, onFrame: (frame: Frame) => void): number {
    const header = this.header;
    assert(header !== null, "payload state without a header");
    const take = Math.min(header.payloadBytes - this.payloadFilled, chunk.length - offset);
    this.payloadParts.push(chunk.subarray(offset, offset + take));
    this.payloadFilled += take;
    if (this.payloadFilled === header.payloadBytes) {
      const payload = joinParts(this.payloadParts, header.payloadBytes);
      this.header = null;
      this.payloadParts = [];
      this.payloadFilled = 0;
      onFrame({ kind: header.kind, requestId: header.requestId, payload });
    }
    return offset + take;
  }

  private checkLength(header: FrameHeader): void {
    if (header.payloadBytes <= this.maxPayloadBytes) return;
    this.failure = new FrameTooLargeError(header.requestId, header.payloadBytes, this.maxPayloadBytes);
    throw this.failure;
  }
}

function checkedLimit(bytes: number): number {
  assert(Number.isInteger(bytes) && bytes >= 0, "maxFrameBytes must be a non-negative integer");
  return bytes;
}

function joinParts(parts: readonly Uint8Array[], totalBytes: number): Uint8Array {
  const [first] = parts;
  if (parts.length === 1 && first !== undefined) return first;
  const joined = new Uint8Array(totalBytes);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

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

export interface FrameDecoderOptions {
  /** Largest payload accepted; a larger declared length fails before anything is allocated. */
  readonly maxFrameBytes?: number;
}

interface FrameHeader {
  readonly kind: number;
  readonly requestId: number;
  readonly payloadBytes: number;
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
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  private readonly headerBytes = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  private header: FrameHeader | null = null;
  private payloadParts: Uint8Array[] = [];
  private payloadFilled = 0;
  private failure: FrameTooLargeError | null = null;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    assert(Number.isInteger(this.maxFrameBytes) && this.maxFrameBytes >= 0, "maxFrameBytes must be a non-negative integer");
  }

  /** Bytes received that belong to a frame not yet complete. */
  get pendingBytes(): number {
    return this.header === null ? this.headerFilled : FRAME_HEADER_BYTES + this.payloadFilled;
  }

  /**
   * Calls `onFrame` for every frame the chunk completes, in stream order. Throws
   * FrameTooLargeError when a header declares too large a payload; frames before it in the same
   * chunk have been delivered by then.
   */
  push(chunk: Uint8Array, onFrame: (frame: Frame) => void): void {
    if (this.failure !== null) throw this.failure;
    let offset = 0;
    while (offset < chunk.length) {
      offset = this.header === null ? this.consumeHeader(chunk, offset, onFrame) : this.consumePayload(chunk, offset, onFrame);
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
    this.checkLength(header);
    const payloadStart = offset + FRAME_HEADER_BYTES;
    const payloadEnd = payloadStart + header.payloadBytes;
    if (payloadEnd <= chunk.length) {
      onFrame({ kind: header.kind, requestId: header.requestId, payload: chunk.subarray(payloadStart, payloadEnd) });
      return payloadEnd;
    }
    this.startPayload(header, onFrame);
    return payloadStart;
  }

  private startPayload(header: FrameHeader, onFrame: (frame: Frame) => void): void {
    this.checkLength(header);
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
    if (header.payloadBytes <= this.maxFrameBytes) return;
    this.failure = new FrameTooLargeError(header.requestId, header.payloadBytes, this.maxFrameBytes);
    throw this.failure;
  }
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

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { KvError } from "../../src/errors.js";
import { InvariantViolation } from "../../src/util/assert.js";
import { MAX_FRAME_BYTES } from "../../src/engine/limits.js";
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameTooLargeError,
  type Frame,
} from "../../src/server/protocol/frame.js";

interface PlainFrame {
  kind: number;
  requestId: number;
  payload: number[];
}

const plain = (frame: Frame): PlainFrame => ({ kind: frame.kind, requestId: frame.requestId, payload: [...frame.payload] });

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Reference model: parse a complete byte string in one pass, the obvious way. */
function referenceParse(bytes: Uint8Array, maxFrameBytes: number): { frames: PlainFrame[]; tooLarge: boolean; pendingBytes: number } {
  const frames: PlainFrame[] = [];
  let offset = 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  while (bytes.length - offset >= FRAME_HEADER_BYTES) {
    const length = view.getUint32(offset + 5);
    if (length > maxFrameBytes) return { frames, tooLarge: true, pendingBytes: 0 };
    if (bytes.length - offset - FRAME_HEADER_BYTES < length) break;
    const start = offset + FRAME_HEADER_BYTES;
    frames.push({ kind: view.getUint8(offset), requestId: view.getUint32(offset + 1), payload: [...bytes.subarray(start, start + length)] });
    offset = start + length;
  }
  return { frames, tooLarge: false, pendingBytes: bytes.length - offset };
}

/** Feeds `chunks` in order and reports what the decoder produced. */
function feed(decoder: FrameDecoder, chunks: readonly Uint8Array[]): { frames: PlainFrame[]; tooLarge: boolean } {
  const frames: PlainFrame[] = [];
  try {
    for (const chunk of chunks) decoder.push(chunk, (frame) => frames.push(plain(frame)));
  } catch (error) {
    expect(error).toBeInstanceOf(FrameTooLargeError);
    return { frames, tooLarge: true };
  }
  return { frames, tooLarge: false };
}

function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let previous = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(previous, point));
    previous = point;
  }
  return chunks;
}

const byteByByte = (bytes: Uint8Array): Uint8Array[] => [...bytes].map((byte) => Uint8Array.of(byte));

const frameArbitrary = fc.record({
  kind: fc.integer({ min: 0, max: 255 }),
  requestId: fc.integer({ min: 0, max: 0xffff_ffff }),
  payload: fc.uint8Array({ maxLength: 300 }),
});

describe("encodeFrame", () => {
  it("writes kind, request id and length big-endian before the payload", () => {
    const frame = encodeFrame(0x02, 0x01020304, Uint8Array.of(9, 8, 7));
    expect([...frame]).toEqual([0x02, 1, 2, 3, 4, 0, 0, 0, 3, 9, 8, 7]);
  });

  it("refuses a kind or request id that does not fit its field", () => {
    expect(() => encodeFrame(256, 1, new Uint8Array(0))).toThrow(InvariantViolation);
    expect(() => encodeFrame(1, 2 ** 32, new Uint8Array(0))).toThrow(InvariantViolation);
    expect(() => encodeFrame(1, -1, new Uint8Array(0))).toThrow(InvariantViolation);
  });
});

describe("FrameDecoder", () => {
  it("yields the same frames fed whole, byte by byte and at random split points", () => {
    fc.assert(
      fc.property(fc.array(frameArbitrary, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
        const stream = concat(frames.map((frame) => encodeFrame(frame.kind, frame.requestId, frame.payload)));
        const expected = frames.map((frame) => ({ ...frame, payload: [...frame.payload] }));
        expect(feed(new FrameDecoder(), [stream]).frames).toEqual(expected);
        expect(feed(new FrameDecoder(), byteByByte(stream)).frames).toEqual(expected);
        const decoder = new FrameDecoder();
        expect(feed(decoder, splitAt(stream, cuts)).frames).toEqual(expected);
        expect(decoder.pendingBytes).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it("agrees with a one-pass reference parser on garbage bytes, however they are split", () => {
    const maxFrameBytes = 64;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat(), { maxLength: 20 }), (garbage, cuts) => {
        const expected = referenceParse(garbage, maxFrameBytes);
        const decoder = new FrameDecoder({ maxFrameBytes });
        const actual = feed(decoder, splitAt(garbage, cuts));
        expect(actual.frames).toEqual(expected.frames);
        expect(actual.tooLarge).toBe(expected.tooLarge);
        if (!expected.tooLarge) expect(decoder.pendingBytes).toBe(expected.pendingBytes);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses a 2 GiB length prefix with TOO_LARGE before allocating anything", () => {
    const decoder = new FrameDecoder();
    const header = Uint8Array.of(0x02, 0, 0, 0, 7, 0x80, 0, 0, 0);
    const before = process.memoryUsage().arrayBuffers;
    let caught: unknown;
    try {
      decoder.push(header, () => expect.unreachable("no frame"));
    } catch (error) {
      caught = error;
    }
    const grownBytes = process.memoryUsage().arrayBuffers - before;
    expect(caught).toBeInstanceOf(FrameTooLargeError);
    expect((caught as FrameTooLargeError).code).toBe("TOO_LARGE");
    expect((caught as FrameTooLargeError).requestId).toBe(7);
    expect((caught as FrameTooLargeError).declaredBytes).toBe(2 ** 31);
    expect(grownBytes).toBeLessThan(MAX_FRAME_BYTES / 4);
    expect(decoder.pendingBytes).toBeLessThanOrEqual(FRAME_HEADER_BYTES);
  });

  it("refuses an oversized header that arrives split, and stays failed afterwards", () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 10 });
    const stream = encodeFrame(1, 5, new Uint8Array(11));
    const result = feed(decoder, byteByByte(stream.subarray(0, FRAME_HEADER_BYTES)));
    expect(result).toEqual({ frames: [], tooLarge: true });
    expect(() => decoder.push(encodeFrame(1, 6, new Uint8Array(1)), () => undefined)).toThrow(KvError);
  });

  it("delivers the frames that precede an oversized one in the same chunk", () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 4 });
    const stream = concat([encodeFrame(1, 1, Uint8Array.of(1)), encodeFrame(1, 2, new Uint8Array(5)), encodeFrame(1, 3, new Uint8Array(0))]);
    expect(feed(decoder, [stream])).toEqual({ frames: [{ kind: 1, requestId: 1, payload: [1] }], tooLarge: true });
  });

  it("accepts a frame right at the limit and refuses one byte more", () => {
    const maxFrameBytes = 1000;
    const atLimit = encodeFrame(3, 1, new Uint8Array(maxFrameBytes).fill(7));
    const overLimit = encodeFrame(3, 2, new Uint8Array(maxFrameBytes + 1));
    const accepted = feed(new FrameDecoder({ maxFrameBytes }), splitAt(atLimit, [5, 500]));
    expect(accepted.tooLarge).toBe(false);
    expect(accepted.frames[0]?.payload.length).toBe(maxFrameBytes);
    expect(feed(new FrameDecoder({ maxFrameBytes }), [overLimit])).toEqual({ frames: [], tooLarge: true });
  });

  it("keeps a truncated frame pending until its last byte arrives", () => {
    const stream = encodeFrame(4, 42, Uint8Array.of(1, 2, 3, 4));
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    decoder.push(stream.subarray(0, stream.length - 1), (frame) => frames.push(frame));
    expect(frames).toEqual([]);
    expect(decoder.pendingBytes).toBe(stream.length - 1);
    decoder.push(stream.subarray(stream.length - 1), (frame) => frames.push(frame));
    expect(frames.map(plain)).toEqual([{ kind: 4, requestId: 42, payload: [1, 2, 3, 4] }]);
    expect(decoder.pendingBytes).toBe(0);
  });

  it("holds only the bytes received of a frame that declares a large payload", () => {
    const decoder = new FrameDecoder();
    const header = Uint8Array.of(0x02, 0, 0, 0, 1, 0x03, 0xc0, 0, 0); // 60 MiB declared
    const before = process.memoryUsage().arrayBuffers;
    decoder.push(header, () => expect.unreachable("no frame"));
    decoder.push(new Uint8Array(10), () => expect.unreachable("no frame"));
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(MAX_FRAME_BYTES / 4);
    expect(decoder.pendingBytes).toBe(FRAME_HEADER_BYTES + 10);
  });

  it("does not copy a payload that arrives in one chunk after a split header", () => {
    const frame = encodeFrame(1, 1, Uint8Array.of(1, 2, 3));
    const payloadChunk = frame.slice(FRAME_HEADER_BYTES);
    const payloads: Uint8Array[] = [];
    const decoder = new FrameDecoder();
    for (const chunk of [frame.slice(0, 4), frame.slice(4, FRAME_HEADER_BYTES), payloadChunk]) {
      decoder.push(chunk, (decoded) => payloads.push(decoded.payload));
    }
    expect(payloads.map((payload) => [payload.buffer === payloadChunk.buffer, [...payload]])).toEqual([[true, [1, 2, 3]]]);
  });

  it("emits a frame that lies whole in one chunk as a view of it, without copying", () => {
    const stream = concat([encodeFrame(1, 1, Uint8Array.of(1, 2)), encodeFrame(1, 2, Uint8Array.of(3))]);
    const payloads: Uint8Array[] = [];
    new FrameDecoder().push(stream, (frame) => payloads.push(frame.payload));
    expect(payloads.map((payload) => payload.buffer === stream.buffer)).toEqual([true, true]);
  });
});

describe("FrameDecoder admission", () => {
  /** Admits a frame only while `room` bytes are left; `grant` gives bytes back. */
  function gatedDecoder(room: number): { decoder: FrameDecoder; admitted: () => number; grant: (bytes: number) => void } {
    let left = room;
    let admitted = 0;
    const decoder = new FrameDecoder({
      admit: (header) => {
        if (header.payloadBytes > left) return false;
        left -= header.payloadBytes;
        admitted += 1;
        return true;
      },
    });
    return { decoder, admitted: () => admitted, grant: (bytes) => (left += bytes) };
  }

  it("holds the input at a refused header and decodes it in order once resumed", () => {
    const stream = concat([encodeFrame(1, 1, new Uint8Array(4)), encodeFrame(1, 2, new Uint8Array(10).fill(9)), encodeFrame(1, 3, Uint8Array.of(5))]);
    const { decoder, grant } = gatedDecoder(4);
    const frames: PlainFrame[] = [];
    decoder.push(stream, (frame) => frames.push(plain(frame)));
    expect(frames.map((frame) => frame.requestId)).toEqual([1]);
    expect(decoder.isHeld).toBe(true);
    decoder.push(encodeFrame(1, 4, new Uint8Array(0)), (frame) => frames.push(plain(frame)));
    expect(decoder.resume((frame) => frames.push(plain(frame)))).toBe(false);
    grant(10);
    expect(decoder.resume((frame) => frames.push(plain(frame)))).toBe(false);
    expect(frames.map((frame) => frame.requestId)).toEqual([1, 2]);
    grant(1);
    expect(decoder.resume((frame) => frames.push(plain(frame)))).toBe(true);
    expect(frames.map((frame) => frame.requestId)).toEqual([1, 2, 3, 4]);
    expect(frames[1]?.payload).toEqual(new Array(10).fill(9));
  });

  it("admits each frame once, before its payload, however the stream is split and held", () => {
    fc.assert(
      fc.property(fc.array(frameArbitrary, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 8 }), fc.integer({ min: 0, max: 400 }), (frames, cuts, room) => {
        const stream = concat(frames.map((frame) => encodeFrame(frame.kind, frame.requestId, frame.payload)));
        const { decoder, admitted, grant } = gatedDecoder(room);
        const decoded: PlainFrame[] = [];
        const onFrame = (frame: Frame): void => {
          decoded.push(plain(frame));
          grant(frame.payload.length);
        };
        for (const chunk of splitAt(stream, cuts)) decoder.push(chunk, onFrame);
        // Whatever is held gets room at last: one frame is admitted per round at worst.
        for (let round = 0; decoder.isHeld && round <= frames.length; round++) {
          grant(300);
          decoder.resume(onFrame);
        }
        expect(decoded).toEqual(frames.map((frame) => ({ ...frame, payload: [...frame.payload] })));
        expect(admitted()).toBe(frames.length);
        expect(decoder.isHeld).toBe(false);
      }),
    );
  });

  it("skips a frame over the limit but within the skip bound, however split, and goes on decoding", () => {
    const stream = concat([encodeFrame(1, 1, Uint8Array.of(1)), encodeFrame(1, 2, new Uint8Array(50).fill(3)), encodeFrame(1, 3, Uint8Array.of(4))]);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 10 }), (cuts) => {
        const skipped: number[] = [];
        const decoder = new FrameDecoder({ maxFrameBytes: 10, skipOversized: { upToBytes: 100, onSkipped: (header) => skipped.push(header.requestId) } });
        expect(feed(decoder, splitAt(stream, cuts)).frames.map((frame) => frame.requestId)).toEqual([1, 3]);
        expect(skipped).toEqual([2]);
        expect(decoder.pendingBytes).toBe(0);
      }),
    );
    const beyond = new FrameDecoder({ maxFrameBytes: 10, skipOversized: { upToBytes: 100, onSkipped: () => undefined } });
    expect(feed(beyond, [encodeFrame(1, 4, new Uint8Array(101))]).tooLarge).toBe(true);
  });

  it("applies a raised limit to frames whose header comes later", () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 4 });
    expect(feed(decoder, [encodeFrame(1, 1, new Uint8Array(4))]).frames).toHaveLength(1);
    decoder.maxFrameBytes = 8;
    expect(feed(decoder, [encodeFrame(1, 2, new Uint8Array(8))]).frames).toHaveLength(1);
    expect(feed(decoder, [encodeFrame(1, 3, new Uint8Array(9))]).tooLarge).toBe(true);
  });
});

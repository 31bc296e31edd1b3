import { addExtension, Packr } from "msgpackr";
import { KvError } from "../errors.js";
import { ExactDecimal } from "./decimal.js";
import { MAX_ENCODED_DEPTH } from "./limits.js";
import { Decimal } from "./value.js";

/**
 * The one codec of the project: the wire protocol, the Raft log and snapshots all encode
 * through it, so a value is byte-identical wherever it travels.
 *
 * Type mapping (see value.ts): bigint is always written as a 64-bit integer, so it decodes as a
 * bigint again; any other number is a Float and decodes as a number (3.0 comes back as 3, still
 * a number). Decimal travels as an extension holding its exact exponential string and decodes
 * as ExactDecimal. msgpackr writes -0 as the integer 0, so -0 travels as its own extension.
 * `undefined` is msgpackr's extension 0; it round-trips but is never a Value.
 *
 * Maps are written in insertion order. Snapshots must be byte-identical across replicas, so
 * whoever builds a Map that is encoded (the store, snapshot writers) builds it in a
 * deterministic order; the codec does not sort.
 *
 * Decoding first scans the document structure without allocating (DocumentScanner), so any
 * malformed input - truncated, trailing bytes, 0xc1, lengths beyond the input, unknown
 * extensions, nesting deeper than MAX_ENCODED_DEPTH - is a KvError INVALID before msgpackr
 * allocates anything.
 */
const UNDEFINED_EXTENSION_TYPE = 0;
const DECIMAL_EXTENSION_TYPE = 1;
const NEGATIVE_ZERO_EXTENSION_TYPE = 2;

/** Stands in for -0 while encoding; never leaves this module. */
class NegativeZero {
  static readonly instance = new NegativeZero();
}

addExtension({
  Class: Decimal,
  type: DECIMAL_EXTENSION_TYPE,
  // toExponential() without digits is exact and does not depend on a clone's toExpPos/toExpNeg.
  write: (decimal: Decimal) => decimal.toExponential(),
  read: (text: unknown) => {
    if (typeof text !== "string") throw new KvError("INVALID", "malformed Decimal extension");
    return new ExactDecimal(text);
  },
});

addExtension({
  Class: NegativeZero,
  type: NEGATIVE_ZERO_EXTENSION_TYPE,
  pack: () => new Uint8Array(0),
  unpack: () => -0,
});

const packr = new Packr({
  useRecords: false,
  mapsAsObjects: false,
  int64AsType: "bigint",
  moreTypes: false,
  // Decoded bytes must not share memory with the frame or log record they came from, or a
  // stored 10-byte value would keep a 64 MiB frame alive.
  copyBuffers: true,
});

/**
 * Encodes one document. The result may be a view into a buffer shared with earlier results
 * (msgpackr packs into one growing buffer): use its byteOffset/byteLength, never `.buffer`
 * alone. Data msgpackr cannot write (an Int beyond 64 bits, a cycle) is INVALID.
 */
export function encode(data: unknown): Uint8Array {
  const prepared = containsNegativeZero(data, 0) ? replaceNegativeZero(data) : data;
  try {
    return packr.pack(prepared);
  } catch (error) {
    if (error instanceof KvError) throw error;
    throw new KvError("INVALID", `cannot encode: ${String(error)}`);
  }
}

/** Decodes exactly one msgpack document; any malformation is a typed INVALID error. */
export function decode(bytes: Uint8Array): unknown {
  new DocumentScanner(bytes).scan();
  try {
    return packr.unpack(bytes);
  } catch (error) {
    if (error instanceof KvError) throw error;
    throw new KvError("INVALID", `malformed msgpack payload: ${String(error)}`);
  }
}

// ---- -0 ----------------------------------------------------------------------------------

/** Objects msgpackr writes as maps of their properties; other class instances are leaves here. */
function isPlainObject(data: object): data is Record<string, unknown> {
  const prototype: unknown = Object.getPrototypeOf(data);
  return prototype === Object.prototype || prototype === null;
}

function containsNegativeZero(data: unknown, depth: number): boolean {
  if (typeof data === "number") return Object.is(data, -0);
  const children = containerChildren(data);
  if (children === undefined) return false;
  if (depth >= MAX_ENCODED_DEPTH) throw new KvError("INVALID", `data nested deeper than ${MAX_ENCODED_DEPTH} levels`);
  for (const child of children) if (containsNegativeZero(child, depth + 1)) return true;
  return false;
}

/** What msgpackr writes item by item: array elements, Map values, plain object values. */
function containerChildren(data: unknown): Iterable<unknown> | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  if (Array.isArray(data)) return data as unknown[];
  if (data instanceof Map) return data.values();
  return isPlainObject(data) ? Object.values(data) : undefined;
}

/** A copy of `data` with every -0 in arrays, Maps and plain objects replaced by the marker. */
function replaceNegativeZero(data: unknown): unknown {
  if (Object.is(data, -0)) return NegativeZero.instance;
  if (typeof data !== "object" || data === null) return data;
  if (Array.isArray(data)) return data.map(replaceNegativeZero);
  if (data instanceof Map) {
    return new Map(Array.from(data, ([key, element]: [unknown, unknown]) => [key, replaceNegativeZero(element)]));
  }
  if (!isPlainObject(data)) return data;
  const copy: Record<string, unknown> = {};
  for (const key in data) copy[key] = replaceNegativeZero(data[key]);
  return copy;
}

// ---- Structure scan ----------------------------------------------------------------------

function malformed(message: string): KvError {
  return new KvError("INVALID", `malformed msgpack payload: ${message}`);
}

/**
 * Walks one msgpack document header by header, iteratively, checking that every length fits
 * in the remaining input, that the nesting stays within MAX_ENCODED_DEPTH, that only this
 * codec's extensions appear, and that the document ends exactly at the end of the input.
 */
class DocumentScanner {
  private readonly view: DataView;
  private position = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  scan(): void {
    // Items still to read in each open container, outermost first; the root is one item.
    const pending: number[] = [1];
    while (pending.length > 0) {
      const top = pending.length - 1;
      const left = pending[top] as number;
      if (left === 0) {
        pending.pop();
        continue;
      }
      pending[top] = left - 1;
      const children = this.item();
      if (children === 0) continue;
      if (pending.length > MAX_ENCODED_DEPTH) throw malformed(`nested deeper than ${MAX_ENCODED_DEPTH} levels`);
      pending.push(children);
    }
    if (this.position !== this.bytes.length) throw malformed("trailing bytes after the document");
  }

  /** Reads one item's header and skips its payload; returns how many child items follow. */
  private item(): number {
    const type = this.uint(1);
    if (type <= 0x7f || type >= 0xe0) return 0; // fixints
    if (type <= 0x8f) return this.children(2 * (type & 0x0f));
    if (type <= 0x9f) return this.children(type & 0x0f);
    if (type <= 0xbf) return this.skip(type & 0x1f);
    return this.typedItem(type);
  }

  private typedItem(type: number): number {
    switch (type) {
      case 0xc0: case 0xc2: case 0xc3: return 0;
      case 0xc4: case 0xd9: return this.skip(this.uint(1));
      case 0xc5: case 0xda: return this.skip(this.uint(2));
      case 0xc6: case 0xdb: return this.skip(this.uint(4));
      case 0xc7: return this.extension(this.uint(1));
      case 0xc8: return this.extension(this.uint(2));
      case 0xc9: return this.extension(this.uint(4));
      case 0xca: case 0xce: case 0xd2: return this.skip(4);
      case 0xcb: case 0xcf: case 0xd3: return this.skip(8);
      case 0xcc: case 0xd0: return this.skip(1);
      case 0xcd: case 0xd1: return this.skip(2);
      case 0xd4: return this.extension(1, true);
      case 0xd5: return this.extension(2);
      case 0xd6: return this.extension(4);
      case 0xd7: return this.extension(8);
      case 0xd8: return this.extension(16);
      case 0xdc: return this.children(this.uint(2));
      case 0xdd: return this.children(this.uint(4));
      case 0xde: return this.children(2 * this.uint(2));
      case 0xdf: return this.children(2 * this.uint(4));
      default: throw malformed(`reserved type byte 0x${type.toString(16)}`);
    }
  }

  /** Every item takes at least one byte, so a count beyond the remaining input is a lie. */
  private children(count: number): number {
    if (count > this.bytes.length - this.position) throw malformed("declared length exceeds the input");
    return count;
  }

  private skip(length: number): number {
    this.need(length);
    this.position += length;
    return 0;
  }

  /**
   * msgpackr writes an extension with a `write` function (Decimal) as a one-byte tag
   * (fixext 1) followed by the written item, so that tag form is the only one accepted for it,
   * and the item after it must be the string.
   */
  private extension(length: number, isTag = false): number {
    const type = this.view.getInt8(this.need(1));
    this.position += 1;
    this.skip(length);
    if (type === UNDEFINED_EXTENSION_TYPE) return 0;
    if (type === NEGATIVE_ZERO_EXTENSION_TYPE && length === 0) return 0;
    if (type === DECIMAL_EXTENSION_TYPE && isTag) return this.taggedString();
    throw malformed(`unknown extension type ${type}`);
  }

  /** Scans the item after the tag, which must be a string; it belongs to the tag, not to a container. */
  private taggedString(): number {
    const type = this.bytes[this.need(1)] as number;
    const isString = (type >= 0xa0 && type <= 0xbf) || (type >= 0xd9 && type <= 0xdb);
    if (!isString) throw malformed("Decimal extension is not followed by a string");
    return this.item();
  }

  private uint(length: 1 | 2 | 4): number {
    const at = this.need(length);
    this.position += length;
    if (length === 1) return this.view.getUint8(at);
    return length === 2 ? this.view.getUint16(at) : this.view.getUint32(at);
  }

  /** Returns the current position after checking that `length` more bytes exist. */
  private need(length: number): number {
    if (length > this.bytes.length - this.position) throw malformed("unexpected end of input");
    return this.position;
  }
}

import { addExtension, Packr } from "msgpackr";
import Decimal from "decimal.js";
import { KvError } from "../errors.js";

/**
 * The one codec of the project: the wire protocol, the Raft log and snapshots all encode
 * through it, so a value is byte-identical wherever it travels.
 *
 * Type mapping (see value.ts): bigint is always written as a 64-bit integer, so it decodes as a
 * bigint again; any other number is a Float and decodes as a number. Decimal travels as an
 * extension holding its canonical string.
 */
const DECIMAL_EXTENSION_TYPE = 1;

addExtension({
  Class: Decimal,
  type: DECIMAL_EXTENSION_TYPE,
  write: (decimal: Decimal) => decimal.toString(),
  read: (text: unknown) => {
    if (typeof text !== "string") throw new KvError("INVALID", "malformed Decimal extension");
    return new Decimal(text);
  },
});

const packr = new Packr({
  useRecords: false,
  mapsAsObjects: false,
  int64AsType: "bigint",
  moreTypes: false,
});

export function encode(data: unknown): Uint8Array {
  return packr.pack(data);
}

/** Decodes one msgpack document; any malformation is a typed INVALID error. */
export function decode(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (error) {
    if (error instanceof KvError) throw error;
    throw new KvError("INVALID", `malformed msgpack payload: ${(error as Error).message}`);
  }
}

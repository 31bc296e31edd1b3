import { crc32 } from "node:zlib";
import { decode, encode } from "../../engine/codec.js";
import { KvError } from "../../errors.js";
import type { Membership, NodeId } from "../../raft/types.js";

/**
 * Checksummed records shared by the log and the snapshot files. Records are msgpack arrays
 * (not objects): the project codec decodes maps as `Map`, and positional fields keep every
 * record small and its shape easy to verify.
 */

const CHECKSUM_BYTES = 4;

export function corrupt(what: string, reason: string): KvError {
  return new KvError("CORRUPT", `${what}: ${reason}`);
}

/** `[crc32 of the encoded bytes, big-endian u32][encoded fields]`. */
export function sealRecord(fields: readonly unknown[]): Uint8Array {
  const body = encode(fields);
  const record = new Uint8Array(CHECKSUM_BYTES + body.length);
  new DataView(record.buffer).setUint32(0, crc32(body));
  record.set(body, CHECKSUM_BYTES);
  return record;
}

/** Verifies the checksum and decodes; `what` names the record in the CORRUPT message. */
export function unsealRecord(record: Uint8Array, what: string): unknown[] {
  if (record.length <= CHECKSUM_BYTES) throw corrupt(what, `record is only ${record.length} bytes`);
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const body = record.subarray(CHECKSUM_BYTES);
  const expected = view.getUint32(0);
  const actual = crc32(body);
  if (expected !== actual) throw corrupt(what, `checksum mismatch (stored ${expected}, computed ${actual})`);
  let fields: unknown;
  try {
    fields = decode(body);
  } catch (error) {
    throw corrupt(what, (error as Error).message);
  }
  if (!Array.isArray(fields)) throw corrupt(what, "record is not an array");
  return fields;
}

/** A non-negative safe integer (an index or a term). */
export function expectCount(value: unknown, what: string, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw corrupt(what, `${field} is not a non-negative integer`);
  }
  return value;
}

export function expectString(value: unknown, what: string, field: string): string {
  if (typeof value !== "string") throw corrupt(what, `${field} is not a string`);
  return value;
}

function expectStrings(value: unknown, what: string, field: string): NodeId[] {
  if (!Array.isArray(value)) throw corrupt(what, `${field} is not a list`);
  return value.map((item) => expectString(item, what, field));
}

export function membershipToFields(membership: Membership): unknown[] {
  return [membership.voters, membership.learners, Object.entries(membership.addresses)];
}

export function membershipFromFields(value: unknown, what: string): Membership {
  if (!Array.isArray(value) || value.length !== 3) throw corrupt(what, "membership is malformed");
  const [voters, learners, addressPairs] = value as unknown[];
  if (!Array.isArray(addressPairs)) throw corrupt(what, "membership addresses are not a list");
  const addresses: Record<NodeId, string> = {};
  for (const pair of addressPairs) {
    const [node, address] = expectStrings(pair, what, "membership address");
    if (node === undefined || address === undefined) throw corrupt(what, "membership address is malformed");
    addresses[node] = address;
  }
  return {
    voters: expectStrings(voters, what, "voters"),
    learners: expectStrings(learners, what, "learners"),
    addresses,
  };
}

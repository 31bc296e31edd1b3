import { isDecimal } from "../engine/decimal.js";
import type { Outcome } from "../engine/outcome.js";
import type { HandlerResult } from "./connection.js";
import { renderOutcome } from "./protocol/operations.js";

/** msgpack writes an Int (bigint) as a 64-bit integer: a type byte and eight bytes. */
const INT_ENCODED_BYTES = 9;

/**
 * A lower bound of the msgpack size of a result (a Value, a Map of them, a list, or a plain
 * object such as a scan page), computed without encoding anything: every item takes at least
 * one byte, an Int nine, a string a header byte and one per UTF-16 unit (UTF-8 never takes
 * fewer), bytes a header byte and their length. Stops counting once past `stopAboveBytes`,
 * so sizing a huge result costs only as much as it takes to see that it is too large.
 */
export function minimumEncodedBytes(result: unknown, stopAboveBytes: number): number {
  const counter = { bytes: 0, stopAboveBytes };
  count(result, counter);
  return counter.bytes;
}

/**
 * The answer to a read, built only when its connection sends it (connection-output.ts): a
 * result whose minimum size is over the response limit is refused TOO_LARGE unbuilt, and
 * answers a client does not read wait as references to the result rather than as bytes.
 */
export function deferredOutcome(operationName: string, outcome: Outcome<unknown>, maxResponseBytes: number): HandlerResult {
  if (!outcome.ok) return renderOutcome(operationName, outcome);
  return { minimumBytes: minimumEncodedBytes(outcome.value, maxResponseBytes), build: () => renderOutcome(operationName, outcome) };
}

interface Counter {
  bytes: number;
  readonly stopAboveBytes: number;
}

function count(item: unknown, counter: Counter): void {
  if (counter.bytes > counter.stopAboveBytes) return;
  counter.bytes += ownBytes(item);
  if (typeof item !== "object" || item === null || item instanceof Uint8Array || isDecimal(item)) return;
  if (item instanceof Map) {
    for (const [key, element] of item as ReadonlyMap<unknown, unknown>) {
      count(key, counter);
      count(element, counter);
      if (counter.bytes > counter.stopAboveBytes) return;
    }
    return;
  }
  const elements: Iterable<unknown> = Array.isArray(item) ? item : Object.entries(item).flat();
  for (const element of elements) {
    count(element, counter);
    if (counter.bytes > counter.stopAboveBytes) return;
  }
}

/** The bytes of the item itself, its children left out. */
function ownBytes(item: unknown): number {
  if (typeof item === "string") return 1 + item.length;
  if (typeof item === "bigint") return INT_ENCODED_BYTES;
  if (item instanceof Uint8Array) return 1 + item.byteLength;
  return 1;
}

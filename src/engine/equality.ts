import { isDecimal } from "./decimal.js";
import type { Value, ValueMap } from "./value.js";

/**
 * Type-aware deep equality, the comparison behind CAS. Types never mix (1n is not 1, true is
 * not 1n, a Decimal is not a Float). Within a type the comparison is by value: Floats by
 * numeric value except that NaN equals NaN (so a CAS can replace a NaN it has read; -0 equals
 * 0 as IEEE says), Decimals numerically (1.0 equals 1), bytes by content, lists element-wise,
 * maps by key set and values regardless of insertion order.
 * Values are validated first, so recursion is bounded by the nesting limit.
 */
export function valuesEqual(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (typeof a === "number") return typeof b === "number" && Number.isNaN(a) && Number.isNaN(b);
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (a instanceof Uint8Array) return b instanceof Uint8Array && bytesEqual(a, b);
  if (isDecimal(a)) return isDecimal(b) && a.equals(b);
  if (Array.isArray(a)) return Array.isArray(b) && listsEqual(a, b);
  return isMap(a) && isMap(b) && mapsEqual(a, b);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

function listsEqual(a: readonly Value[], b: readonly Value[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((element, index) => valuesEqual(element, b[index] as Value));
}

function isMap(value: Value): value is ValueMap {
  return value instanceof Map;
}

function mapsEqual(a: ValueMap, b: ValueMap): boolean {
  if (a.size !== b.size) return false;
  for (const [key, element] of a) {
    const other = b.get(key);
    if (other === undefined || !valuesEqual(element, other)) return false;
  }
  return true;
}

import fc from "fast-check";
import { Decimal, type Value } from "../../../src/engine/value.js";
import { DECIMAL_MAX_MANTISSA, DECIMAL_MAX_SCALE } from "../../../src/engine/limits.js";

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

/** Any in-limit Decimal: mantissa below 2^96 in magnitude, 0 to 28 fractional digits. */
export const decimalArbitrary: fc.Arbitrary<Decimal> = fc
  .record({
    // Small mantissas too, so sums of two decimals mostly stay in range.
    mantissa: fc.oneof(
      fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }),
      fc.bigInt({ min: -(DECIMAL_MAX_MANTISSA - 1n), max: DECIMAL_MAX_MANTISSA - 1n }),
    ),
    scale: fc.integer({ min: 0, max: DECIMAL_MAX_SCALE }),
  })
  .map(({ mantissa, scale }) => new Decimal(`${mantissa}e-${scale}`));

/** Strings of any code points (astral included) but never a lone surrogate. */
export const textArbitrary = fc.string({ unit: "binary", maxLength: 12 });

const scalarArbitraries = [
  fc.constant(null),
  fc.boolean(),
  fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
  fc.double(),
  decimalArbitrary,
  textArbitrary,
  fc.uint8Array({ maxLength: 12 }),
] as const;

/** Every engine Value shape, nested a few levels. */
export const valueArbitrary: fc.Arbitrary<Value> = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    ...scalarArbitraries,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.array(fc.tuple(textArbitrary, tie("value")), { maxLength: 4 }).map((entries) => new Map(entries)),
  ),
})).value;

/**
 * A canonical text of a value under CAS equality, written independently of valuesEqual:
 * type tag plus content, maps with sorted keys, Decimals by normalised numeric value.
 */
export function equalityKey(value: Value): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return `bool:${value}`;
    case "bigint":
      return `int:${value}`;
    case "number":
      return `float:${Number.isNaN(value) ? "NaN" : value === 0 ? "0" : String(value)}`;
    case "string":
      return `string:${JSON.stringify(value)}`;
  }
  if (value instanceof Uint8Array) return `bytes:${Buffer.from(value).toString("hex")}`;
  if (Decimal.isDecimal(value)) return `decimal:${new Decimal(value).toFixed()}`;
  if (Array.isArray(value)) return `list:[${value.map(equalityKey).join(",")}]`;
  const entries = [...(value as ReadonlyMap<string, Value>)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `map:{${entries.map(([key, element]) => `${JSON.stringify(key)}=${equalityKey(element)}`).join(",")}}`;
}

/**
 * Exact identity of representation, stricter than CAS equality: -0 differs from 0, Decimals
 * compare digit for digit, maps keep their order. Used to check the codec round trip.
 */
export function representation(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return `bool:${value}`;
    case "bigint":
      return `int:${value}`;
    case "number":
      return `float:${Object.is(value, -0) ? "-0" : String(value)}`;
    case "string":
      return `string:${JSON.stringify(value)}`;
    case "object":
      break;
    default:
      return `unexpected:${typeof value}`;
  }
  if (value instanceof Uint8Array) return `bytes:${Buffer.from(value).toString("hex")}`;
  if (Decimal.isDecimal(value)) return `decimal:${value.toFixed()}`;
  if (Array.isArray(value)) return `list:[${value.map(representation).join(",")}]`;
  if (value instanceof Map) {
    return `map:{${[...value].map(([key, element]) => `${representation(key)}=${representation(element)}`).join(",")}}`;
  }
  return `unexpected:${String(value)}`;
}

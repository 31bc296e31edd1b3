import { Decimal } from "./value.js";
import { KvError, type ErrorCode } from "../errors.js";
import { DECIMAL_MAX_MANTISSA, DECIMAL_MAX_SCALE } from "./limits.js";

/**
 * The project's Decimal class. decimal.js rounds every operation to 20 significant digits by
 * default, which would silently change sums of rust_decimal-sized numbers (up to 29 integer
 * and 28 fractional digits). A sum of two in-limit decimals needs at most 58 significant
 * digits, so 64 keeps all engine arithmetic exact. Half-even rounding matches rust_decimal for
 * the (never expected) case where rounding happens.
 */
export const ExactDecimal: typeof Decimal = Decimal.clone({
  precision: 64,
  rounding: Decimal.ROUND_HALF_EVEN,
});

/**
 * Digits in the integer part that an in-limit decimal can never reach: 2^96 - 1 has 29 digits,
 * so any value with 30 or more integer digits is out of range without computing its mantissa.
 */
const MAX_INTEGER_DIGITS = DECIMAL_MAX_MANTISSA.toString().length;

/** True for an instance of any decimal.js clone: they all share one prototype. */
export function isDecimal(value: unknown): value is Decimal {
  return Decimal.isDecimal(value);
}

/**
 * Returns the canonical ExactDecimal for `value`, or throws VALUE_INVALID when it is outside
 * the rust_decimal limits (scale above 28, |mantissa| >= 2^96, NaN, ±Infinity). decimal.js
 * keeps no trailing zeros, so the limits apply to the shortest spelling: 1.50 is scale 1.
 * Negative zero becomes zero: the codec writes both as "0", so keeping the sign would make a
 * stored value differ from the same value read back.
 */
export function checkDecimal(value: Decimal): Decimal {
  return checkedDecimal(value, "VALUE_INVALID");
}

/** Exact sum; a result outside the rust_decimal limits is OVERFLOW, never rounded. */
export function addDecimals(a: Decimal, b: Decimal): Decimal {
  const sum = checkDecimal(a).plus(checkDecimal(b));
  return checkedDecimal(sum, "OVERFLOW");
}

function checkedDecimal(value: Decimal, code: ErrorCode): Decimal {
  if (!value.isFinite()) throw new KvError(code, `Decimal ${value.toString()} is not finite`);
  if (value.isZero()) return new ExactDecimal(0);
  const scale = value.decimalPlaces();
  if (scale > DECIMAL_MAX_SCALE) {
    throw new KvError(code, `Decimal has ${scale} fractional digits; at most ${DECIMAL_MAX_SCALE} are allowed`);
  }
  // `e` is the base-10 exponent of the leading digit; checking it first keeps a value like
  // 1e1000000 from being expanded into a million-digit string below.
  if (value.e >= MAX_INTEGER_DIGITS || mantissaOf(value, scale) >= DECIMAL_MAX_MANTISSA) {
    throw new KvError(code, "Decimal mantissa must be below 2^96");
  }
  return value.constructor === ExactDecimal ? value : new ExactDecimal(value);
}

/** |value| * 10^scale as an integer; exact because `scale` is the value's own number of decimal places. */
function mantissaOf(value: Decimal, scale: number): bigint {
  return BigInt(value.abs().toFixed(scale).replace(".", ""));
}

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { addDecimals, checkDecimal, ExactDecimal, isDecimal } from "../../../src/engine/decimal.js";
import { DECIMAL_MAX_MANTISSA } from "../../../src/engine/limits.js";
import { Decimal } from "../../../src/engine/value.js";
import { decimalArbitrary } from "./arbitraries.js";

const code = (code: string) => expect.objectContaining({ code });

/** mantissa and scale of an in-limit decimal, from its plain digits. */
function parts(value: Decimal): { mantissa: bigint; scale: number } {
  const scale = value.decimalPlaces();
  return { mantissa: BigInt(value.toFixed(scale).replace(".", "")), scale };
}

describe("checkDecimal enforces the rust_decimal limits", () => {
  test("28 fractional digits are accepted, 29 are VALUE_INVALID", () => {
    expect(checkDecimal(new Decimal("0.0000000000000000000000000001")).toFixed()).toBe("0.0000000000000000000000000001");
    expect(checkDecimal(new Decimal("-1.2345678901234567890123456789")).decimalPlaces()).toBe(28);
    expect(() => checkDecimal(new Decimal("0.00000000000000000000000000001"))).toThrow(code("VALUE_INVALID"));
    expect(() => checkDecimal(new Decimal("1e-1000000"))).toThrow(code("VALUE_INVALID"));
  });

  test("mantissa 2^96-1 is accepted at any scale, 2^96 is VALUE_INVALID", () => {
    const largest = DECIMAL_MAX_MANTISSA - 1n;
    expect(checkDecimal(new Decimal(largest.toString())).toFixed()).toBe(largest.toString());
    expect(checkDecimal(new Decimal(`-${largest}`)).toFixed()).toBe(`-${largest}`);
    expect(checkDecimal(new Decimal(`${largest}e-28`)).toFixed()).toBe(new Decimal(`${largest}e-28`).toFixed());
    expect(() => checkDecimal(new Decimal(DECIMAL_MAX_MANTISSA.toString()))).toThrow(code("VALUE_INVALID"));
    expect(() => checkDecimal(new Decimal(`-${DECIMAL_MAX_MANTISSA}e-28`))).toThrow(code("VALUE_INVALID"));
    expect(() => checkDecimal(new Decimal("1e1000000"))).toThrow(code("VALUE_INVALID"));
  });

  test("NaN and infinities are VALUE_INVALID", () => {
    for (const text of ["NaN", "Infinity", "-Infinity"]) {
      expect(() => checkDecimal(new Decimal(text))).toThrow(code("VALUE_INVALID"));
    }
  });

  test("returns the project's exact class, whatever clone it was given, and drops the sign of zero", () => {
    const Other = Decimal.clone({ precision: 5 });
    const checked = checkDecimal(new Other("123456789.123456789"));
    expect(checked.constructor).toBe(ExactDecimal);
    expect(checked.toFixed()).toBe("123456789.123456789");
    const exact = new ExactDecimal("2.5");
    expect(checkDecimal(exact)).toBe(exact);
    expect(checkDecimal(new Decimal("-0")).isNegative()).toBe(false);
  });

  test("isDecimal recognises every clone and nothing else", () => {
    expect(isDecimal(new Decimal(1))).toBe(true);
    expect(isDecimal(new ExactDecimal(1))).toBe(true);
    expect(isDecimal(new (Decimal.clone())(1))).toBe(true);
    for (const other of [1, 1n, "1", null, undefined, {}, [1], new Uint8Array(1)]) expect(isDecimal(other)).toBe(false);
  });
});

describe("addDecimals", () => {
  test("0.1 + 0.2 is exactly 0.3", () => {
    const sum = addDecimals(new Decimal("0.1"), new Decimal("0.2"));
    expect(sum.toFixed()).toBe("0.3");
    expect(sum.equals(new Decimal("0.3"))).toBe(true);
  });

  test("keeps all 29 digits where a default Decimal would round to 20", () => {
    const a = new Decimal("1234567890123456789.123456789");
    const b = new Decimal("0.000000001");
    expect(a.plus(b).toFixed()).not.toBe("1234567890123456789.12345679");
    expect(addDecimals(a, b).toFixed()).toBe("1234567890123456789.12345679");
    const big = new Decimal("39614081257132168796771975167");
    expect(addDecimals(big, big).toFixed()).toBe("79228162514264337593543950334");
  });

  test("a result beyond the limits is OVERFLOW, in both directions", () => {
    const largest = new Decimal((DECIMAL_MAX_MANTISSA - 1n).toString());
    expect(() => addDecimals(largest, new Decimal(1))).toThrow(code("OVERFLOW"));
    expect(() => addDecimals(largest.negated(), new Decimal(-1))).toThrow(code("OVERFLOW"));
    // Exact, not rounded: the fractional digits would push the mantissa past 2^96.
    expect(() => addDecimals(new Decimal("1e28"), new Decimal("1e-28"))).toThrow(code("OVERFLOW"));
  });

  test("limits apply to the value: a sum whose last digits cancel to zeros fits without them", () => {
    // 24 fractional digits and a 30-digit mantissa as written, 23 and 29 digits without the trailing 0.
    const sum = addDecimals(new Decimal("-49420.384120409334579136166197"), new Decimal("-74935.915007235166288099343533"));
    expect(sum.toFixed()).toBe("-124356.29912764450086723550973");
  });

  test("operands outside the limits are VALUE_INVALID", () => {
    expect(() => addDecimals(new Decimal("NaN"), new Decimal(1))).toThrow(code("VALUE_INVALID"));
    expect(() => addDecimals(new Decimal(1), new Decimal("1e-29"))).toThrow(code("VALUE_INVALID"));
  });

  test("property: matches integer arithmetic on (mantissa, scale)", () => {
    fc.assert(
      fc.property(decimalArbitrary, decimalArbitrary, (a, b) => {
        const left = parts(a);
        const right = parts(b);
        const common = Math.max(left.scale, right.scale);
        const rescale = (part: { mantissa: bigint; scale: number }) => part.mantissa * 10n ** BigInt(common - part.scale);
        let mantissa = rescale(left) + rescale(right);
        let scale = common;
        // The limits apply to the value, not to one spelling of it: 1.50 is 1.5 (scale 1).
        while (scale > 0 && mantissa % 10n === 0n) [mantissa, scale] = [mantissa / 10n, scale - 1];
        const magnitude = mantissa < 0n ? -mantissa : mantissa;
        if (magnitude >= DECIMAL_MAX_MANTISSA) {
          expect(() => addDecimals(a, b)).toThrow(code("OVERFLOW"));
          return;
        }
        const sum = addDecimals(a, b);
        expect(sum.constructor).toBe(ExactDecimal);
        expect(sum.equals(new Decimal(`${mantissa}e-${scale}`))).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});

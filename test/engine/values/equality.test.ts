import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { decode, encode } from "../../../src/engine/codec.js";
import { ExactDecimal } from "../../../src/engine/decimal.js";
import { valuesEqual } from "../../../src/engine/equality.js";
import { validateValue } from "../../../src/engine/validation.js";
import { Decimal, type Value } from "../../../src/engine/value.js";
import { equalityKey, valueArbitrary } from "./arbitraries.js";

describe("valuesEqual", () => {
  test.each<[string, Value, Value]>([
    ["Int and Float", 1n, 1],
    ["Bool and Int", true, 1n],
    ["Bool and Float", false, 0],
    ["null and false", null, false],
    ["Decimal and Float", new Decimal(1), 1],
    ["Decimal and Int", new Decimal(1), 1n],
    ["String and Bytes", "a", Buffer.from("a")],
    ["empty list and empty map", [], new Map()],
    ["empty list and empty bytes", [], new Uint8Array(0)],
    ["different Ints", 1n, 2n],
    ["bytes of another content", Uint8Array.of(1, 2), Uint8Array.of(1, 3)],
    ["bytes of another length", Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0)],
    ["lists of another length", [1n], [1n, 1n]],
    ["lists in another order", [1n, 2n], [2n, 1n]],
    ["maps with another key", new Map([["a", 1n]]), new Map([["b", 1n]])],
    ["maps with another value", new Map([["a", 1n]]), new Map([["a", 1]])],
    ["maps of another size", new Map([["a", 1n]]), new Map([["a", 1n], ["b", 2n]])],
    [
      "maps that differ only in which key holds null",
      new Map<string, Value>([["a", null], ["b", 1n]]),
      new Map<string, Value>([["b", 1n], ["c", null]]),
    ],
    ["nested difference", [new Map([["k", [1n, "x"]]])], [new Map([["k", [1n, "y"]]])]],
  ])("%s are different", (_name, a, b) => {
    expect(valuesEqual(a, b)).toBe(false);
    expect(valuesEqual(b, a)).toBe(false);
  });

  test.each<[string, Value, Value]>([
    ["Decimals with trailing zeros", new Decimal("1.0"), new Decimal("1")],
    ["Decimals of different clones", new ExactDecimal("2.50"), new (Decimal.clone({ precision: 3 }))("2.5")],
    ["NaN and NaN", Number.NaN, Number.NaN],
    ["-0 and 0", -0, 0],
    ["bytes by content", Buffer.from([1, 2, 3]), Uint8Array.of(1, 2, 3)],
    ["bytes views at an offset", new Uint8Array([9, 1, 2]).subarray(1), Uint8Array.of(1, 2)],
    ["maps in another order", new Map([["a", 1n], ["b", 2n]]), new Map([["b", 2n], ["a", 1n]])],
    ["nested lists and maps", [new Map([["k", [null, true, "s"]]])], [new Map([["k", [null, true, "s"]]])]],
  ])("%s are equal", (_name, a, b) => {
    expect(valuesEqual(a, b)).toBe(true);
    expect(valuesEqual(b, a)).toBe(true);
  });

  test("property: reflexive, and equal after the codec round trip", () => {
    fc.assert(
      fc.property(valueArbitrary, (value) => {
        expect(valuesEqual(value, value)).toBe(true);
        expect(valuesEqual(value, validateValue(decode(encode(value))))).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  /** Small values, so that two independent draws are often equal. */
  const smallValue: fc.Arbitrary<Value> = fc.letrec<{ value: Value }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small" },
      fc.constantFrom<Value>(null, true, false, 0n, 1n, 0, -0, 1, Number.NaN, "", "a"),
      fc.constantFrom("1", "1.0", "0.5").map((text) => new Decimal(text)),
      fc.constantFrom(0, 1, 2).map((length) => new Uint8Array(length)),
      fc.array(tie("value"), { maxLength: 2 }),
      fc.array(fc.tuple(fc.constantFrom("a", "b"), tie("value")), { maxLength: 2 }).map((entries) => new Map(entries)),
    ),
  })).value;

  test("property: symmetric and in agreement with a canonical-text reference", () => {
    fc.assert(
      fc.property(smallValue, smallValue, (a, b) => {
        const expected = equalityKey(a) === equalityKey(b);
        expect(valuesEqual(a, b)).toBe(expected);
        expect(valuesEqual(b, a)).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });
});

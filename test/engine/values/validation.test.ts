import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { decode, encode } from "../../../src/engine/codec.js";
import { ExactDecimal } from "../../../src/engine/decimal.js";
import { valuesEqual } from "../../../src/engine/equality.js";
import { DEFAULT_LIMITS, type EngineLimits } from "../../../src/engine/limits.js";
import { typeOf, validateKey, validateName, validateValue, valueSize } from "../../../src/engine/validation.js";
import { Decimal, type Value } from "../../../src/engine/value.js";
import { INT64_MAX, INT64_MIN, representation, valueArbitrary } from "./arbitraries.js";

const code = (code: string) => expect.objectContaining({ code });

function nested(depth: number): unknown {
  let value: unknown = 1n;
  for (let level = 0; level < depth; level += 1) value = [value];
  return value;
}

describe("validateKey", () => {
  test.each([
    ["empty", ""],
    ["257 characters", "k".repeat(257)],
    ["257 emoji", "😀".repeat(257)],
    ["newline", "a\nb"],
    ["tab", "a\tb"],
    ["NUL", "a\u0000b"],
    ["DEL", "a\u007f"],
    ["C1 control", "a\u0085"],
    ["lone high surrogate", "a\ud83d"],
    ["lone low surrogate", "\ude00a"],
    ["reserved prefix", "__x"],
    ["only the reserved prefix", "__"],
  ])("rejects %s with KEY_INVALID", (_name, key) => {
    expect(() => validateKey(key)).toThrow(code("KEY_INVALID"));
  });

  test.each([
    ["a number", 1],
    ["a bigint", 1n],
    ["null", null],
    ["undefined", undefined],
    ["bytes", new Uint8Array([97])],
  ])("rejects %s (not a string) with KEY_INVALID", (_name, key) => {
    expect(() => validateKey(key)).toThrow(code("KEY_INVALID"));
  });

  test.each([
    ["spaces", "user name with spaces"],
    ["an email address", "email@domain.com"],
    ["punctuation", "50%_discount!"],
    ["emoji", "flag 🏳️‍🌈 😀"],
    ["256 characters", "k".repeat(256)],
    ["256 emoji (one character each)", "😀".repeat(256)],
    ["a single underscore prefix", "_x"],
    ["underscores later", "a__b"],
    ["one character", "x"],
  ])("accepts %s and returns it unchanged", (_name, key) => {
    expect(validateKey(key)).toBe(key);
  });

  test("the length limit is configurable", () => {
    const limits: EngineLimits = { ...DEFAULT_LIMITS, maxKeyLength: 4 };
    expect(validateKey("abcd", limits)).toBe("abcd");
    expect(validateKey("😀😀😀😀", limits)).toBe("😀😀😀😀");
    expect(() => validateKey("abcde", limits)).toThrow(code("KEY_INVALID"));
    expect(() => validateKey("😀😀😀😀😀", limits)).toThrow(code("KEY_INVALID"));
  });

  test("property: accepted exactly when a code-point-by-code-point reading of the rules accepts", () => {
    const alphabet = fc.constantFrom("a", "_", " ", "\n", "\u0085", "😀", "\ud83d", "é", "\u007f");
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 6 }), fc.integer({ min: 1, max: 5 }), (parts, maxKeyLength) => {
        const key = parts.join("");
        const codePoints = [...key];
        const expected =
          codePoints.length >= 1 &&
          codePoints.length <= maxKeyLength &&
          !key.startsWith("__") &&
          codePoints.every((character) => {
            const point = character.codePointAt(0) as number;
            const control = point <= 0x1f || (point >= 0x7f && point <= 0x9f);
            return !control && !(point >= 0xd800 && point <= 0xdfff);
          });
        const limits = { ...DEFAULT_LIMITS, maxKeyLength };
        let accepted = true;
        try {
          validateKey(key, limits);
        } catch (error) {
          expect(error).toMatchObject({ code: "KEY_INVALID" });
          accepted = false;
        }
        expect(accepted).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("validateName", () => {
  test("follows the key rules and names the argument in the message", () => {
    expect(validateName("tenant-1", "namespace")).toBe("tenant-1");
    expect(validateName("worker 7 😀", "owner")).toBe("worker 7 😀");
    expect(() => validateName("", "lock name")).toThrow(/lock name/);
    expect(() => validateName("__system", "namespace")).toThrow(code("KEY_INVALID"));
    expect(() => validateName("a\nb", "owner")).toThrow(code("KEY_INVALID"));
    expect(() => validateName(42, "owner")).toThrow(/owner/);
  });
});

describe("validateValue", () => {
  test("accepts every row of the data model and returns it", () => {
    const bytes = Buffer.from([1, 2, 3]);
    const cases: Value[] = [
      null,
      true,
      false,
      INT64_MIN,
      INT64_MAX,
      1.5,
      Number.NaN,
      Number.NEGATIVE_INFINITY,
      -0,
      "text 😀",
      "",
      bytes,
      new Uint8Array(0),
      [1n, "mixed", null, [true]],
      new Map<string, Value>([["a", 1n], ["b", new Map([["c", []]])]]),
    ];
    for (const value of cases) expect(validateValue(value)).toBe(value);
  });

  test("decimals come back as the project's exact class, also inside lists and maps", () => {
    const plain = new Decimal("12.5");
    const single = validateValue(plain) as Decimal;
    expect(single.constructor).toBe(ExactDecimal);
    expect(single.equals(plain)).toBe(true);
    const list = [1n, plain] as const;
    const checkedList = validateValue(list) as readonly Value[];
    expect((checkedList[1] as Decimal).constructor).toBe(ExactDecimal);
    expect(list[1]).toBe(plain); // the input is not modified
    const map = new Map<string, Value>([["price", plain], ["n", 1n]]);
    const checkedMap = validateValue(map) as ReadonlyMap<string, Value>;
    expect((checkedMap.get("price") as Decimal).constructor).toBe(ExactDecimal);
    expect([...checkedMap.keys()]).toEqual(["price", "n"]);
  });

  test.each([
    ["undefined", undefined],
    ["a function", () => 1],
    ["a symbol", Symbol("s")],
    ["a plain object", { a: 1n }],
    ["an object without prototype", Object.create(null) as object],
    ["a Date", new Date(0)],
    ["a Set", new Set([1n])],
    ["an Int16Array", new Int16Array(2)],
    ["an ArrayBuffer", new ArrayBuffer(2)],
    ["undefined inside a list", [1n, undefined]],
    ["a hole in a list", [1n, , 2n]], // eslint-disable-line no-sparse-arrays
    ["a map with a number key", new Map<unknown, unknown>([[1, 1n]])],
    ["a map with a lone surrogate key", new Map([["\ud800", 1n]])],
    ["a string with a lone surrogate", "a\udc00"],
    ["bigint 2^63", 2n ** 63n],
    ["bigint -2^63-1", -(2n ** 63n) - 1n],
    ["a NaN Decimal", new Decimal("NaN")],
    ["a Decimal with 29 fractional digits", new Decimal("1e-29")],
    ["a Decimal mantissa of 2^96", new Decimal((2n ** 96n).toString())],
    ["depth 65", nested(65)],
    ["100000-deep nesting", nested(100_000)],
  ])("rejects %s with VALUE_INVALID", (_name, value) => {
    expect(() => validateValue(value)).toThrow(code("VALUE_INVALID"));
  });

  test("depth 64 is accepted, a scalar is depth 0 and [1n] is depth 1", () => {
    expect(valuesEqual(validateValue(nested(64)), nested(64) as Value)).toBe(true);
    const shallow: EngineLimits = { ...DEFAULT_LIMITS, maxDepth: 1 };
    expect(validateValue(1n, { ...DEFAULT_LIMITS, maxDepth: 0 })).toBe(1n);
    expect(() => validateValue([1n], { ...DEFAULT_LIMITS, maxDepth: 0 })).toThrow(code("VALUE_INVALID"));
    expect(validateValue([1n], shallow)).toEqual([1n]);
    expect(() => validateValue([[1n]], shallow)).toThrow(code("VALUE_INVALID"));
    expect(() => validateValue(new Map([["m", new Map()]]), shallow)).toThrow(code("VALUE_INVALID"));
  });

  test("cycles are VALUE_INVALID, shared subtrees are fine", () => {
    const cycle: unknown[] = [1n];
    cycle.push(cycle);
    expect(() => validateValue(cycle)).toThrow(code("VALUE_INVALID"));
    const map = new Map<string, unknown>();
    map.set("self", [map]);
    expect(() => validateValue(map)).toThrow(code("VALUE_INVALID"));
    const shared = [1n, 2n];
    expect(validateValue([shared, shared])).toEqual([shared, shared]);
  });

  test("a value over maxValueBytes is TOO_LARGE; the limit is the encoded size", () => {
    const limits: EngineLimits = { ...DEFAULT_LIMITS, maxValueBytes: 64 };
    const fits = "x".repeat(64 - 2); // str8 header is 2 bytes
    expect(valueSize(fits)).toBe(64);
    expect(validateValue(fits, limits)).toBe(fits);
    expect(() => validateValue("x".repeat(63), limits)).toThrow(code("TOO_LARGE"));
    expect(() => validateValue(new Uint8Array(100), limits)).toThrow(code("TOO_LARGE"));
    expect(() => validateValue(Array.from({ length: 40 }, () => 1n), limits)).toThrow(code("TOO_LARGE"));
    expect(() => validateValue(new Map([["k".repeat(70), null]]), limits)).toThrow(code("TOO_LARGE"));
  });

  test("a small graph of shared lists that would expand enormously is TOO_LARGE quickly", () => {
    let value: unknown[] = [1n];
    for (let level = 0; level < 60; level += 1) value = [value, value];
    expect(() => validateValue(value, { ...DEFAULT_LIMITS, maxValueBytes: 1024 * 1024 })).toThrow(code("TOO_LARGE"));
  });

  test("property: any Value is accepted, equal to itself, and decoded data validates back to it", () => {
    fc.assert(
      fc.property(valueArbitrary, (value) => {
        const checked = validateValue(value);
        expect(valuesEqual(checked, value)).toBe(true);
        expect(representation(validateValue(decode(encode(value))))).toBe(representation(checked));
        expect(valueSize(checked)).toBe(encode(value).byteLength);
      }),
      { numRuns: 400 },
    );
  });
});

describe("typeOf", () => {
  test.each([
    [null, "null"],
    [false, "bool"],
    [0n, "int"],
    [0, "float"],
    [Number.NaN, "float"],
    [new Decimal(0), "decimal"],
    [new ExactDecimal("1.5"), "decimal"],
    ["", "string"],
    [new Uint8Array(0), "bytes"],
    [Buffer.from("a"), "bytes"],
    [[], "list"],
    [new Map(), "map"],
  ] as [Value, string][])("typeOf(%o) is %s", (value, expected) => {
    expect(typeOf(value)).toBe(expected);
  });
});

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { decode, encode } from "../../../src/engine/codec.js";
import { ExactDecimal } from "../../../src/engine/decimal.js";
import { MAX_ENCODED_DEPTH } from "../../../src/engine/limits.js";
import { Decimal } from "../../../src/engine/value.js";
import { KvError } from "../../../src/errors.js";
import { INT64_MAX, INT64_MIN, representation, valueArbitrary } from "./arbitraries.js";

function roundTrip(value: unknown): unknown {
  return decode(encode(value));
}

function hex(text: string): Uint8Array {
  return Buffer.from(text.replace(/\s+/g, ""), "hex");
}

function expectInvalid(bytes: Uint8Array): void {
  let thrown: unknown;
  try {
    decode(bytes);
  } catch (error) {
    thrown = error;
  }
  expect(thrown, Buffer.from(bytes).toString("hex")).toBeInstanceOf(KvError);
  expect((thrown as KvError).code).toBe("INVALID");
}

describe("round trip keeps every value type exactly", () => {
  test.each([
    ["Int -2^63", INT64_MIN],
    ["Int 2^63-1", INT64_MAX],
    ["Int 0", 0n],
    ["Int -1", -1n],
  ])("%s stays a bigint", (_name, value) => {
    expect(roundTrip(value)).toBe(value);
  });

  test("integral floats stay numbers", () => {
    for (const value of [3, 0, -7, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 60, -(2 ** 60), Number.MAX_VALUE]) {
      const back = roundTrip(value);
      expect(typeof back).toBe("number");
      expect(back).toBe(value);
    }
  });

  test("-0 comes back as -0, alone and nested in lists, maps and plain objects", () => {
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    expect(Object.is(roundTrip(0), 0)).toBe(true);
    const nested = roundTrip([1.5, [-0], new Map([["zero", -0]])]) as [number, number[], Map<string, number>];
    expect(Object.is(nested[1][0], -0)).toBe(true);
    expect(Object.is(nested[2].get("zero"), -0)).toBe(true);
    const object = roundTrip({ term: 1, value: -0 }) as Map<string, unknown>;
    expect(Object.is(object.get("value"), -0)).toBe(true);
    expect(object.get("term")).toBe(1);
  });

  test("NaN and infinities", () => {
    expect(Number.isNaN(roundTrip(Number.NaN))).toBe(true);
    expect(roundTrip(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(roundTrip(Number.NEGATIVE_INFINITY)).toBe(Number.NEGATIVE_INFINITY);
    expect(roundTrip(0.1)).toBe(0.1);
  });

  test("booleans never become integers", () => {
    expect(roundTrip(true)).toBe(true);
    expect(roundTrip(false)).toBe(false);
  });

  test.each([
    "0.0000000000000000000000000001",
    "-1234.5678",
    "79228162514264337593543950335",
    "-7.9228162514264337593543950335",
    "0",
    "1e+40",
  ])("Decimal %s comes back digit for digit as an ExactDecimal", (text) => {
    const back = roundTrip(new Decimal(text));
    expect(back).toBeInstanceOf(ExactDecimal);
    expect((back as Decimal).constructor).toBe(ExactDecimal);
    expect((back as Decimal).toFixed()).toBe(new Decimal(text).toFixed());
  });

  test("a Decimal's encoding does not depend on the clone's display settings", () => {
    const Scientific = Decimal.clone({ toExpPos: 2, toExpNeg: -2 });
    expect(encode(new Scientific("12345.678"))).toEqual(encode(new ExactDecimal("12345.678")));
  });

  test("bytes come back as a Uint8Array with the same content, not sharing the input", () => {
    const original = Uint8Array.from([0, 1, 2, 250, 255]);
    const frame = encode(original);
    const back = decode(frame);
    expect(back).toBeInstanceOf(Uint8Array);
    expect([...(back as Uint8Array)]).toEqual([...original]);
    frame.fill(0);
    expect([...(back as Uint8Array)]).toEqual([...original]);
  });

  test("a bytes view encodes only the bytes it covers", () => {
    const view = Uint8Array.of(9, 1, 2, 9).subarray(1, 3);
    expect([...(roundTrip(view) as Uint8Array)]).toEqual([1, 2]);
  });

  test("empty and nested containers, emoji strings", () => {
    const value = [
      "",
      new Uint8Array(0),
      [],
      new Map(),
      "héllo 😀 👨‍👩‍👧",
      [[[1n, "a"]], new Map([["k", new Map([["inner", [true, null]]])]])],
    ];
    expect(representation(roundTrip(value))).toBe(representation(value));
  });

  test("decodes a plain Uint8Array view at an offset inside a larger buffer", () => {
    const value = [1n, "héllo 😀", Uint8Array.of(7, 8), new Map([["k", 1.5]]), new Decimal("2.5"), -0];
    const encoded = encode(value);
    const frame = new Uint8Array(encoded.byteLength + 10).fill(0xc1);
    frame.set(encoded, 5);
    const back = decode(frame.subarray(5, 5 + encoded.byteLength));
    expect(representation(back)).toBe(representation(value));
  });

  test("maps keep insertion order and identical maps encode identically", () => {
    const build = () => new Map<string, bigint>([["z", 1n], ["a", 2n], ["m", 3n]]);
    const back = roundTrip(build()) as Map<string, bigint>;
    expect([...back.keys()]).toEqual(["z", "a", "m"]);
    expect(encode(build())).toEqual(encode(build()));
  });

  test("property: every Value survives the round trip exactly", () => {
    fc.assert(
      fc.property(valueArbitrary, (value) => {
        expect(representation(roundTrip(value))).toBe(representation(value));
      }),
      { numRuns: 400 },
    );
  });
});

describe("decode refuses malformed input with INVALID", () => {
  test("empty input and truncated documents", () => {
    expectInvalid(new Uint8Array(0));
    const complete = encode([1n, "text", new Uint8Array([1, 2, 3]), new Map([["k", 1.5]]), new Decimal("1.25"), -0]);
    for (let length = 0; length < complete.length; length += 1) expectInvalid(complete.subarray(0, length));
    expect(decode(complete)).toBeInstanceOf(Array);
  });

  test("trailing bytes after one document", () => {
    expectInvalid(hex("01 02"));
    expectInvalid(hex("91 01 c0"));
    expectInvalid(Buffer.concat([encode("a"), encode("b")]));
  });

  test("the reserved byte 0xc1, at the root and nested", () => {
    expectInvalid(hex("c1"));
    expectInvalid(hex("92 01 c1"));
    expectInvalid(hex("81 a1 6b c1"));
  });

  test("declared lengths beyond the input fail before allocating", () => {
    expectInvalid(hex("dd ffffffff"));
    expectInvalid(hex("df ffffffff 01"));
    expectInvalid(hex("db ffffffff 61"));
    expectInvalid(hex("c6 ffffffff 00"));
    expectInvalid(hex("c9 ffffffff 01"));
    expectInvalid(hex("dc ffff 01 02"));
  });

  test("extensions other than the codec's own", () => {
    expectInvalid(hex("d4 05 00"));
    expectInvalid(hex("c7 00 07"));
    expectInvalid(hex("d6 ff 00000000")); // msgpack timestamp
    expectInvalid(hex("d4 72 00")); // msgpackr record definition
    expectInvalid(hex("d5 72 00 00"));
    expectInvalid(hex("c7 01 02 00")); // -0 marker with a payload
  });

  test("a Decimal tag must be followed by a decimal string", () => {
    expectInvalid(hex("d4 01 00"));
    expectInvalid(hex("d4 01 00 01"));
    expectInvalid(hex("d4 01 00 a3 616263")); // "abc"
    expectInvalid(hex("c7 01 01 00 a1 31")); // not the tag form
    expect((decode(hex("d4 01 00 a3 312e35")) as Decimal).toString()).toBe("1.5");
  });

  test("nesting deeper than the codec bound, even 100000 levels, is INVALID and not a stack overflow", () => {
    expectInvalid(new Uint8Array(100_000).fill(0x91));
    const deepest = new Uint8Array(MAX_ENCODED_DEPTH + 1).fill(0x91);
    deepest[MAX_ENCODED_DEPTH] = 0xc0;
    expect(decode(deepest)).toBeInstanceOf(Array);
    let deepestDecimal: unknown = new Decimal("1.5");
    for (let level = 0; level < MAX_ENCODED_DEPTH; level += 1) deepestDecimal = [deepestDecimal];
    expect(representation(roundTrip(deepestDecimal))).toBe(representation(deepestDecimal));
    const tooDeep = new Uint8Array(MAX_ENCODED_DEPTH + 2).fill(0x91);
    tooDeep[MAX_ENCODED_DEPTH + 1] = 0xc0;
    expectInvalid(tooDeep);
  });

  test("property: random bytes decode or fail with INVALID, nothing else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 48 }), (bytes) => {
        decodeOrInvalid(bytes);
      }),
      { numRuns: 3000 },
    );
  });

  const byteChange = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }));

  test("property: corrupted valid documents decode or fail with INVALID", () => {
    fc.assert(
      fc.property(valueArbitrary, fc.array(byteChange, { minLength: 1, maxLength: 4 }), (value, changes) => {
        const bytes = Uint8Array.from(encode(value));
        for (const [position, byte] of changes) bytes[position % bytes.length] = byte;
        decodeOrInvalid(bytes);
      }),
      { numRuns: 1000 },
    );
  });
});

function decodeOrInvalid(bytes: Uint8Array): void {
  try {
    decode(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(KvError);
    expect((error as KvError).code).toBe("INVALID");
  }
}

describe("encode", () => {
  test("refuses data nested deeper than the codec bound, including cycles, with INVALID", () => {
    let deep: unknown = -0;
    for (let level = 0; level < MAX_ENCODED_DEPTH + 5; level += 1) deep = [deep];
    expect(() => encode(deep)).toThrow(expect.objectContaining({ code: "INVALID" }));
    const cycle: unknown[] = [];
    cycle.push(cycle);
    expect(() => encode(cycle)).toThrow(expect.objectContaining({ code: "INVALID" }));
  });

  test("an Int beyond 64 bits is INVALID", () => {
    expect(() => encode(2n ** 64n)).toThrow(expect.objectContaining({ code: "INVALID" }));
    expect(() => encode([-(2n ** 63n) - 1n])).toThrow(expect.objectContaining({ code: "INVALID" }));
  });

  test("undefined round-trips (it is refused later, by value validation)", () => {
    expect(roundTrip(undefined)).toBeUndefined();
    expect(roundTrip([undefined])).toEqual([undefined]);
  });
});

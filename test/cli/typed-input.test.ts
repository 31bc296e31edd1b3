import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { KvFloat, type JsValue } from "../../src/client/values.js";
import { parseExactJson } from "../../src/cli/exact-json.js";
import { parseTypedValue, type InputType } from "../../src/cli/typed-input.js";
import { Decimal } from "../../src/engine/value.js";
import { KvError } from "../../src/errors.js";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function codeOf(action: () => unknown): string | null {
  try {
    action();
    return null;
  } catch (error) {
    return error instanceof KvError ? error.code : `not a KvError: ${String(error)}`;
  }
}

describe("parseTypedValue: one conversion per type flag", () => {
  test("string (the default) is taken as is, even when it looks like a number", () => {
    expect(parseTypedValue("42", "string")).toBe("42");
    expect(parseTypedValue("", "string")).toBe("");
  });

  test("--int is exact at the i64 extremes and keeps a sign", () => {
    expect(parseTypedValue("9223372036854775807", "int")).toBe(INT64_MAX);
    expect(parseTypedValue("-9223372036854775808", "int")).toBe(INT64_MIN);
    expect(parseTypedValue("+7", "int")).toBe(7n);
    for (const bad of ["1.5", "1e3", "abc", "", "0x10"]) expect(codeOf(() => parseTypedValue(bad, "int")), bad).toBe("VALUE_INVALID");
  });

  test("--float forces Float, also for integral numbers and the non-finite ones", () => {
    expect(parseTypedValue("3", "float")).toEqual(new KvFloat(3));
    expect(parseTypedValue("-2.5e-3", "float")).toEqual(new KvFloat(-0.0025));
    expect((parseTypedValue("nan", "float") as KvFloat).value).toBeNaN();
    expect(parseTypedValue("-inf", "float")).toEqual(new KvFloat(-Infinity));
    expect(codeOf(() => parseTypedValue("three", "float"))).toBe("VALUE_INVALID");
  });

  test("--decimal keeps every digit", () => {
    const value = parseTypedValue("0.1000000000000000000000000001", "decimal");
    expect(value).toBeInstanceOf(Decimal);
    expect((value as Decimal).toFixed()).toBe("0.1000000000000000000000000001");
    expect(codeOf(() => parseTypedValue("1/3", "decimal"))).toBe("VALUE_INVALID");
    expect(codeOf(() => parseTypedValue("Infinity", "decimal"))).toBe("VALUE_INVALID");
  });

  test("--bool takes true or false only", () => {
    expect(parseTypedValue("true", "bool")).toBe(true);
    expect(parseTypedValue("FALSE", "bool")).toBe(false);
    expect(codeOf(() => parseTypedValue("1", "bool"))).toBe("VALUE_INVALID");
  });

  test("--null takes no argument", () => {
    expect(parseTypedValue(undefined, "null")).toBeNull();
    expect(codeOf(() => parseTypedValue("x", "null"))).toBe("VALUE_INVALID");
  });

  test("--bytes-hex and --bytes @file give the exact bytes", () => {
    expect(parseTypedValue("00ff10", "bytesHex")).toEqual(new Uint8Array([0, 255, 16]));
    expect(parseTypedValue("0xAB", "bytesHex")).toEqual(new Uint8Array([0xab]));
    expect(codeOf(() => parseTypedValue("abc", "bytesHex"))).toBe("VALUE_INVALID");
    const directory = mkdtempSync(join(tmpdir(), "kv-cli-"));
    try {
      const file = join(directory, "value.bin");
      writeFileSync(file, Buffer.from([1, 2, 3, 0]));
      expect(parseTypedValue(`@${file}`, "bytesFile")).toEqual(new Uint8Array([1, 2, 3, 0]));
      expect(codeOf(() => parseTypedValue(file, "bytesFile"))).toBe("VALUE_INVALID");
      expect(codeOf(() => parseTypedValue(`@${file}.missing`, "bytesFile"))).toBe("VALUE_INVALID");
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test("every type but null needs its argument", () => {
    const types: InputType[] = ["string", "int", "float", "decimal", "bool", "json", "bytesFile", "bytesHex"];
    for (const type of types) expect(codeOf(() => parseTypedValue(undefined, type)), type).toBe("VALUE_INVALID");
  });
});

/** What parseExactJson must make of JSON.parse's view of the same text, given the literal's spelling. */
function expectedFromJson(value: unknown): JsValue {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") {
    const text = JSON.stringify(value);
    return /^-?\d+$/.test(text) ? BigInt(text) : new KvFloat(value);
  }
  if (Array.isArray(value)) return value.map(expectedFromJson);
  return new Map(Object.entries(value as object).map(([key, element]) => [key, expectedFromJson(element)]));
}

describe("parseExactJson", () => {
  test("agrees with JSON.parse on any JSON, with integers as Int and other numbers as Float", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        const text = JSON.stringify(value);
        expect(parseExactJson(text)).toEqual(expectedFromJson(JSON.parse(text)));
      }),
      { numRuns: 300 },
    );
  });

  test("keeps every i64 exact, where JSON.parse would round", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), (value) => {
        expect(parseExactJson(` [ ${value} ] `)).toEqual([value]);
      }),
      { numRuns: 200 },
    );
  });

  test("1.0 is a Float, __proto__ is an ordinary key, whitespace is allowed", () => {
    expect(parseExactJson("1.0")).toEqual(new KvFloat(1));
    const map = parseExactJson(' { "__proto__" : { "a" : 1 } } ') as Map<string, JsValue>;
    expect(map).toBeInstanceOf(Map);
    expect(map.get("__proto__")).toEqual(new Map([["a", 1n]]));
  });

  test("refuses malformed JSON and over-deep nesting with VALUE_INVALID", () => {
    for (const bad of ["", "{", "[1,]", "01", "{'a':1}", "[1] 2", "nul", '"\u0001"', "[".repeat(100) + "]".repeat(100)]) {
      expect(codeOf(() => parseExactJson(bad)), bad).toBe("VALUE_INVALID");
    }
  });
});

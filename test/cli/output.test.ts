import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { JsValue } from "../../src/client/values.js";
import { parseExactJson } from "../../src/cli/exact-json.js";
import { renderData, renderEntryWithMeta, renderValue, renderValues, toJsonText, toTyped } from "../../src/cli/output.js";
import { Decimal } from "../../src/engine/value.js";

const I64_MAX = 9223372036854775807n;

describe("renderValue: values printed by type", () => {
  // The CLI's client gives Int as bigint and Float as number (ints: "bigint").
  const cases: [string, JsValue | null, string, string, string][] = [
    ["string", "héllo wörld", "héllo wörld", '"héllo wörld"', '{"type":"string","value":"héllo wörld"}'],
    ["int", I64_MAX, "9223372036854775807", "9223372036854775807", '{"type":"int","value":"9223372036854775807"}'],
    ["integral float", 3, "3.0", "3", '{"type":"float","value":3}'],
    ["float", -0.25, "-0.25", "-0.25", '{"type":"float","value":-0.25}'],
    ["NaN", NaN, "NaN", '"NaN"', '{"type":"float","value":"NaN"}'],
    ["decimal", new Decimal("0.30000000000000000000000001"), "0.30000000000000000000000001", '"0.30000000000000000000000001"', '{"type":"decimal","value":"0.30000000000000000000000001"}'],
    ["bool", false, "false", "false", '{"type":"bool","value":false}'],
    ["null", null, "(nil)", "null", '{"type":"null"}'],
    ["bytes", new Uint8Array([0, 255, 16]), "00ff10", '"00ff10"', '{"type":"bytes","value":"00ff10"}'],
    ["list", [1n, "a", 2.5], '[1,"a",2.5]', '[1,"a",2.5]', '{"type":"list","value":[{"type":"int","value":"1"},{"type":"string","value":"a"},{"type":"float","value":2.5}]}'],
    ["map", { n: I64_MAX, m: { b: true } }, '{"n":9223372036854775807,"m":{"b":true}}', '{"n":9223372036854775807,"m":{"b":true}}', '{"type":"map","value":{"n":{"type":"int","value":"9223372036854775807"},"m":{"type":"map","value":{"b":{"type":"bool","value":true}}}}}'],
  ];

  test.each(cases)("%s", (_name, value, plain, json, typed) => {
    expect(renderValue(value, "plain")).toBe(plain);
    expect(renderValue(value, "json")).toBe(json);
    expect(renderValue(value, "typed")).toBe(typed);
  });

  test("a Map value is typed like a plain object", () => {
    expect(toTyped(new Map<string, JsValue>([["k", 1n]]))).toEqual({ type: "map", value: { k: { type: "int", value: "1" } } });
  });
});

describe("toJsonText", () => {
  /** Values whose JSON is exact both ways: Int, non-integral Float, string, bool, null, lists, maps. */
  const exactJsonValue: fc.Arbitrary<JsValue> = fc.letrec<{ value: JsValue }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small" },
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      fc.string(),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie("value"), { maxLength: 4 }),
      fc.dictionary(fc.string({ minLength: 1 }), tie("value"), { maxKeys: 4 }).map((record) => new Map(Object.entries(record))),
    ),
  })).value;

  test("reads back through the CLI's exact JSON reader as the same value", () => {
    fc.assert(
      fc.property(exactJsonValue, (value) => {
        expect(parseExactJson(toJsonText(value))).toEqual(value);
      }),
      { numRuns: 300 },
    );
  });

  test("a stored string that looks like a bigint placeholder stays a string", () => {
    const text = toJsonText({ a: 1n, b: "bigint-x-0" });
    expect(text).toBe('{"a":1,"b":"bigint-x-0"}');
  });
});

describe("results that are not values", () => {
  test("plain mode prints scalars bare and key lists one a line; json mode prints JSON", () => {
    expect(renderData(true, "plain")).toBe("true");
    expect(renderData(3, "plain")).toBe("3"); // a count, not a Float
    expect(renderData(99.5, "plain")).toBe("99.5");
    expect(renderData(["a", "b"], "plain")).toBe("a\nb");
    expect(renderData(["a", "b"], "json")).toBe('["a","b"]');
    expect(renderData({ acquired: true, token: 12n }, "json")).toBe('{"acquired":true,"token":12}');
  });

  test("mget results: key<TAB>value lines, or an object", () => {
    const values = { a: "x", n: 5n };
    expect(renderValues(values, "plain")).toBe("a\tx\nn\t5");
    expect(renderValues(values, "json")).toBe('{"a":"x","n":5}');
    expect(renderValues(values, "typed")).toBe('{"a":{"type":"string","value":"x"},"n":{"type":"int","value":"5"}}');
  });

  test("getmeta: field lines in plain mode, the value typed in typed mode", () => {
    const entry = { value: 7n, version: 4, createVersion: 2, createdAt: 1000, updatedAt: 2000, expiresAt: null, size: 9, metadata: { owner: "me" } };
    expect(renderEntryWithMeta(entry, "plain").split("\n")).toEqual(["value: 7", "version: 4", "createVersion: 2", "createdAt: 1000", "updatedAt: 2000", "expiresAt: null", "size: 9", 'metadata: {"owner":"me"}']);
    expect(JSON.parse(renderEntryWithMeta(entry, "typed"))).toMatchObject({ value: { type: "int", value: "7" }, version: 4, metadata: { type: "map", value: { owner: { type: "string", value: "me" } } } });
    expect(renderEntryWithMeta(null, "plain")).toBe("(nil)");
  });
});

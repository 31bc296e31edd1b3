import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { DEFAULT_PORT, parseConnectionString } from "../../src/client/connection-string.js";

describe("parseConnectionString", () => {
  test("kv:// with seeds and a namespace", () => {
    expect(parseConnectionString("kv://a:7001,b:7002/ns")).toEqual({ seeds: ["a:7001", "b:7002"], namespace: "ns" });
    expect(parseConnectionString("KV://10.0.0.1:7001/")).toEqual({ seeds: ["10.0.0.1:7001"], namespace: "" });
  });

  test("bare addresses, default port, duplicates and spaces", () => {
    expect(parseConnectionString("127.0.0.1:6380")).toEqual({ seeds: ["127.0.0.1:6380"], namespace: "" });
    expect(parseConnectionString(" a , b:7002, a:6380 ")).toEqual({ seeds: [`a:${DEFAULT_PORT}`, "b:7002"], namespace: "" });
    expect(parseConnectionString("kv://[::1]:7001,[::1]/t")).toEqual({ seeds: ["[::1]:7001", `[::1]:${DEFAULT_PORT}`], namespace: "t" });
  });

  test("the namespace is percent-decoded and follows the key rules", () => {
    expect(parseConnectionString("kv://a:1/tenant%20one").namespace).toBe("tenant one");
    expect(() => parseConnectionString("kv://a:1/__system")).toThrow(expect.objectContaining({ code: "KEY_INVALID" }));
    expect(() => parseConnectionString("kv://a:1/%E0%A4%A")).toThrow(expect.objectContaining({ code: "INVALID" }));
  });

  test("malformed addresses are INVALID", () => {
    for (const bad of ["", "kv://", "a:1,,b:2", "a:99999", "a:0", "host:port", "a b:1"]) {
      expect(() => parseConnectionString(bad), bad).toThrow(expect.objectContaining({ code: "INVALID" }));
    }
  });

  test("any list of host:port seeds round-trips", () => {
    const host = fc.constantFrom("localhost", "127.0.0.1", "node-1.example", "[::1]");
    const address = fc.tuple(host, fc.integer({ min: 1, max: 65535 })).map(([name, port]) => `${name}:${port}`);
    fc.assert(
      fc.property(fc.uniqueArray(address, { minLength: 1, maxLength: 5 }), fc.constantFrom("", "ns", "tenant-7"), (seeds, namespace) => {
        const text = `kv://${seeds.join(",")}${namespace === "" ? "" : `/${namespace}`}`;
        expect(parseConnectionString(text)).toEqual({ seeds, namespace });
      }),
      { numRuns: 200 },
    );
  });
});

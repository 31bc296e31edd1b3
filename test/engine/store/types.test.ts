import { describe, expect, it } from "vitest";
import { ExactDecimal } from "../../../src/engine/decimal.js";
import { comparable } from "./model.js";
import { errorCodeOf, Harness, type QueryInput } from "./harness.js";

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

describe("values keep their type through apply and read (SPEC §3)", () => {
  it("stores every type and returns it unchanged", () => {
    const h = new Harness();
    const values = [null, true, false, 0n, INT64_MAX, INT64_MIN, 1.5, 3, Number.NaN, Infinity, "text", new Uint8Array([0, 255]), [1n, "a", [null]], new Map([["k", 1n]])];
    values.forEach((value, index) => expect(h.set(`k${index}`, value)).toBe(true));
    values.forEach((value, index) => expect(comparable(h.get(`k${index}`))).toEqual(comparable(value)));
    expect(typeof h.get("k3")).toBe("bigint");
    expect(typeof h.get("k8")).toBe("number");
    const decimal = new ExactDecimal("12345678901234567890.123456789");
    h.set("d", decimal);
    expect((h.get("d") as typeof decimal).equals(decimal)).toBe(true);
  });

  it("incr works on Int only, absent counts as 0, and never wraps", () => {
    const h = new Harness();
    expect(h.write({ type: "incr", key: "c", delta: 5n })).toBe(5n);
    expect(h.write({ type: "incr", key: "c", delta: -7n })).toBe(-2n);
    h.set("max", INT64_MAX);
    expect(errorCodeOf(h.apply({ type: "incr", key: "max", delta: 1n }))).toBe("OVERFLOW");
    expect(h.get("max")).toBe(INT64_MAX);
    h.set("min", INT64_MIN);
    expect(errorCodeOf(h.apply({ type: "incr", key: "min", delta: -1n }))).toBe("OVERFLOW");
    for (const value of [true, false, "10", 1.5, 2, new ExactDecimal(1), null, [1n]]) {
      h.set("x", value);
      expect(errorCodeOf(h.apply({ type: "incr", key: "x", delta: 1n }))).toBe("WRONG_TYPE");
      expect(h.get("x")).toEqual(value);
    }
  });

  it("a Bool stays a Bool and is never 0/1", () => {
    const h = new Harness();
    h.set("flag", true);
    expect(h.get("flag")).toBe(true);
    expect(h.write({ type: "cas", key: "flag", expected: 1n, newValue: false })).toBe(false);
    expect(h.write({ type: "cas", key: "flag", expected: true, newValue: false })).toBe(true);
    expect(h.get("flag")).toBe(false);
  });

  it("incrFloat and incrDecimal work on their own type only; decimal sums are exact", () => {
    const h = new Harness();
    expect(h.write({ type: "incrFloat", key: "f", delta: 0.5 })).toBe(0.5);
    expect(h.write({ type: "incrFloat", key: "f", delta: 2 })).toBe(2.5);
    h.set("i", 1n);
    expect(errorCodeOf(h.apply({ type: "incrFloat", key: "i", delta: 1 }))).toBe("WRONG_TYPE");
    expect(errorCodeOf(h.apply({ type: "incrDecimal", key: "f", delta: new ExactDecimal(1) }))).toBe("WRONG_TYPE");
    h.write({ type: "incrDecimal", key: "d", delta: new ExactDecimal("0.1") });
    const sum = h.write({ type: "incrDecimal", key: "d", delta: new ExactDecimal("0.2") }) as InstanceType<typeof ExactDecimal>;
    expect(sum.equals(new ExactDecimal("0.3"))).toBe(true);
    expect((h.get("d") as InstanceType<typeof ExactDecimal>).toString()).toBe("0.3");
    const max = new ExactDecimal((2n ** 96n - 1n).toString());
    h.set("big", max);
    expect(errorCodeOf(h.apply({ type: "incrDecimal", key: "big", delta: new ExactDecimal(1) }))).toBe("OVERFLOW");
  });

  it("append: string by characters, bytes by bytes, list by elements; mismatches are WRONG_TYPE", () => {
    const h = new Harness();
    expect(h.write({ type: "append", key: "s", value: "ab" })).toBe(2);
    expect(h.write({ type: "append", key: "s", value: "🚀" })).toBe(3);
    expect(h.get("s")).toBe("ab🚀");
    expect(h.write({ type: "append", key: "b", value: new Uint8Array([1, 2]) })).toBe(2);
    expect(h.write({ type: "append", key: "b", value: new Uint8Array([3]) })).toBe(3);
    expect([...(h.get("b") as Uint8Array)]).toEqual([1, 2, 3]);
    expect(h.write({ type: "append", key: "l", value: 1n })).toBe(1);
    expect(h.write({ type: "append", key: "l", value: "x" })).toBe(2);
    expect(h.get("l")).toEqual([1n, "x"]);
    expect(errorCodeOf(h.apply({ type: "append", key: "s", value: new Uint8Array([1]) }))).toBe("WRONG_TYPE");
    expect(errorCodeOf(h.apply({ type: "append", key: "b", value: "x" }))).toBe("WRONG_TYPE");
    h.set("n", 5n);
    expect(errorCodeOf(h.apply({ type: "append", key: "n", value: 1n }))).toBe("WRONG_TYPE");
  });

  it("append past the value size limit is TOO_LARGE and leaves the value", () => {
    const h = new Harness({ limits: { maxKeyLength: 256, maxValueBytes: 64, maxDepth: 4 } });
    h.write({ type: "append", key: "s", value: "x".repeat(50) });
    expect(errorCodeOf(h.apply({ type: "append", key: "s", value: "y".repeat(20) }))).toBe("TOO_LARGE");
    expect(h.get("s")).toBe("x".repeat(50));
  });
});

describe("TTL by log time", () => {
  it("a key is visible before expiresAt and gone at expiresAt exactly", () => {
    const h = new Harness();
    h.set("k", "v", { ttlMs: 1000 });
    h.advance(999);
    expect(h.get("k")).toBe("v");
    expect(h.query({ type: "ttl", key: "k" })).toBeCloseTo(0.001, 9);
    h.advance(1);
    expect(h.get("k")).toBe(null);
    expect(h.query({ type: "exists", key: "k" })).toBe(false);
    expect(h.query({ type: "ttl", key: "k" })).toBe(-1);
    expect(h.query({ type: "keys", pattern: "*" })).toEqual([]);
    // A write treats the expired key as absent: nx succeeds and the key is created anew.
    expect(h.set("k", "w", { nx: true })).toBe(true);
    const meta = h.query({ type: "getWithMeta", key: "k" }) as { createVersion: number; version: number };
    expect(meta.createVersion).toBe(meta.version);
  });

  it("log time never goes backwards", () => {
    const h = new Harness();
    h.set("k", "v", { ttlMs: 1000 });
    h.advance(1000);
    h.write({ type: "persist", key: "other" });
    h.advance(-5000);
    h.write({ type: "persist", key: "other" });
    expect(h.engine.now).toBe(h.now + 5000);
    // Neither a later command nor a read with an earlier clock brings the key back.
    expect(h.get("k")).toBe(null);
    expect(h.set("k", "w", { nx: true })).toBe(true);
  });

  it("expire, persist, ttl; expire <= 0 deletes", () => {
    const h = new Harness();
    expect(h.write({ type: "expire", key: "missing", ttlMs: 10 })).toBe(false);
    h.set("k", 1n);
    expect(h.query({ type: "ttl", key: "k" })).toBe(null);
    expect(h.write({ type: "persist", key: "k" })).toBe(false);
    expect(h.write({ type: "expire", key: "k", ttlMs: 2500 })).toBe(true);
    expect(h.query({ type: "ttl", key: "k" })).toBe(2.5);
    expect(h.write({ type: "persist", key: "k" })).toBe(true);
    expect(h.query({ type: "ttl", key: "k" })).toBe(null);
    expect(h.write({ type: "expire", key: "k", ttlMs: 0 })).toBe(true);
    expect(h.query({ type: "exists", key: "k" })).toBe(false);
  });

  it("purgeExpired removes expired keys, earliest first, up to the limit", () => {
    const h = new Harness({ shardCount: 4 });
    for (let index = 0; index < 10; index++) h.set(`k${index}`, BigInt(index), { ttlMs: 100 + index });
    h.set("forever", 1n);
    expect(h.engine.hasExpired(h.now + 99)).toBe(false);
    h.set("k0", 0n, { ttlMs: 100 });
    expect(h.engine.hasExpired(h.now + 100)).toBe(true);
    h.advance(105);
    expect(h.write({ type: "purgeExpired", limit: 3 })).toBe(3);
    expect(h.query({ type: "info" })).toMatchObject({ keys: 8 });
    expect(h.write({ type: "purgeExpired", limit: 100 })).toBe(3);
    expect(h.query({ type: "keys", pattern: "*" })).toEqual(["forever", "k6", "k7", "k8", "k9"]);
    expect(h.engine.hasExpired(h.now)).toBe(false);
    expect(h.engine.hasExpired(h.now + 10)).toBe(true);
  });
});

describe("set options, versions and metadata", () => {
  it("nx, xx, ifVersion and version fields", () => {
    const h = new Harness();
    expect(h.set("k", 1n, { xx: true })).toBe(false);
    expect(h.set("k", 1n, { ifVersion: 1 })).toBe(false);
    expect(h.set("k", 1n, { ifVersion: 0 })).toBe(true);
    const first = h.query({ type: "getWithMeta", key: "k" }) as { version: number; createVersion: number; size: number };
    expect(first).toMatchObject({ version: 3, createVersion: 3, expiresAt: null, metadata: null });
    expect(first.size).toBeGreaterThan(0);
    expect(h.set("k", 2n, { nx: true })).toBe(false);
    expect(h.set("k", 2n, { ifVersion: 2 })).toBe(false);
    h.advance(10);
    expect(h.set("k", 2n, { ifVersion: 3 })).toBe(true);
    expect(h.query({ type: "getWithMeta", key: "k" })).toMatchObject({ value: 2n, version: 6, createVersion: 3, updatedAt: h.now });
  });

  it("metadata is replaced by setMetadata and kept by later writes", () => {
    const h = new Harness();
    expect(h.write({ type: "setMetadata", key: "k", metadata: new Map([["a", 1n]]) })).toBe(false);
    expect(h.query({ type: "getMetadata", key: "k" })).toBe(null);
    h.set("k", 1n);
    expect(h.query({ type: "getMetadata", key: "k" })).toEqual(new Map());
    h.write({ type: "setMetadata", key: "k", metadata: new Map([["owner", "me"]]) });
    h.write({ type: "incr", key: "k", delta: 1n });
    h.set("k", 5n);
    expect(h.query({ type: "getMetadata", key: "k" })).toEqual(new Map([["owner", "me"]]));
    expect(h.get("k")).toBe(5n);
  });

  it("cas compares type-aware; expected null means absent", () => {
    const h = new Harness();
    expect(h.write({ type: "cas", key: "t", expected: "PENDING", newValue: "STARTED" })).toBe(false);
    expect(h.write({ type: "cas", key: "t", expected: null, newValue: "PENDING" })).toBe(true);
    expect(h.write({ type: "cas", key: "t", expected: null, newValue: "X" })).toBe(false);
    expect(h.write({ type: "cas", key: "t", expected: "PENDING", newValue: "STARTED" })).toBe(true);
    h.set("n", 1n);
    expect(h.write({ type: "cas", key: "n", expected: 1, newValue: 2n })).toBe(false);
    expect(h.write({ type: "cas", key: "n", expected: 1n, newValue: 2n })).toBe(true);
  });
});

describe("multi-key and pattern operations", () => {
  it("mget (strict lists the missing keys), mset, mdelete, delete counts", () => {
    const h = new Harness();
    expect(h.write({ type: "mset", entries: [["a", 1n], ["b", "x"]] })).toBe(true);
    expect(h.query({ type: "mget", keys: ["a", "b", "c"] })).toEqual(new Map<string, unknown>([["a", 1n], ["b", "x"]]));
    const strict = h.read({ type: "mget", keys: ["a", "c", "d"], strict: true });
    expect(strict).toMatchObject({ ok: false, error: { code: "NOT_FOUND", keys: ["c", "d"] } });
    expect(h.write({ type: "delete", keys: ["a", "c"] })).toBe(1);
    expect(h.write({ type: "mdelete", keys: ["a", "b"] })).toBe(1);
  });

  it("keys, count, getPattern, deletePattern with and without a separator", () => {
    const h = new Harness();
    for (const key of ["app.db.host", "app.db.port", "app.name", "user:1", "user:2"]) h.set(key, key);
    expect(h.query({ type: "keys", pattern: "app.*" })).toEqual(["app.db.host", "app.db.port", "app.name"]);
    expect(h.query({ type: "keys", pattern: "app.*", separator: "." })).toEqual(["app.name"]);
    expect(h.query({ type: "keys", pattern: "app.**", separator: "." })).toEqual(["app.db.host", "app.db.port", "app.name"]);
    expect(h.query({ type: "count", pattern: "user:?" })).toBe(2);
    expect(h.query({ type: "getPattern", pattern: "user:*" })).toEqual(new Map([["user:1", "user:1"], ["user:2", "user:2"]]));
    expect(h.write({ type: "deletePattern", pattern: "app.db.*" })).toBe(2);
    expect(h.query({ type: "keys", pattern: "*" })).toEqual(["app.name", "user:1", "user:2"]);
    expect(errorCodeOf(h.read({ type: "keys", pattern: "[" }))).toBe("INVALID");
  });

  it("namespaces never see each other's keys", () => {
    const h = new Harness();
    h.set("k", "default");
    h.write({ type: "set", key: "k", value: "tenant", namespace: "t1" });
    expect(h.get("k")).toBe("default");
    expect(h.get("k", "t1")).toBe("tenant");
    expect(h.query({ type: "keys", pattern: "*", namespace: "t1" })).toEqual(["k"]);
    expect(h.write({ type: "deletePattern", pattern: "*", namespace: "t1" })).toBe(1);
    expect(h.get("k")).toBe("default");
  });

  it("scan visits every key once over a full iteration and storageSize reports sizes", () => {
    const h = new Harness({ shardCount: 16 });
    const keys = Array.from({ length: 100 }, (_, index) => `key${index}`);
    for (const key of keys) h.set(key, key);
    const seen: string[] = [];
    let cursor = "0";
    let pages = 0;
    do {
      const page = h.query({ type: "scan", cursor, count: 10 }) as { cursor: string; keys: string[] };
      seen.push(...page.keys);
      cursor = page.cursor;
      pages++;
    } while (cursor !== "0" && pages < 1000);
    expect(seen.sort()).toEqual([...keys].sort());
    expect(pages).toBeGreaterThan(1);
    const sizes = h.query({ type: "storageSize", keys: ["key1", "nope"] }) as Map<string, number>;
    expect([...sizes.keys()]).toEqual(["key1"]);
    const total = h.query({ type: "storageSize" }) as { total: number };
    expect(total.total).toBeGreaterThan(100 * (sizes.get("key1") as number) * 0.5);
  });
});

describe("construction and validation at the edge", () => {
  it("accepts power-of-two shard counts from 1 to 4096 only", () => {
    for (const shardCount of [1, 2, 256, 4096]) expect(new Harness({ shardCount }).engine.shardCount).toBe(shardCount);
    for (const shardCount of [0, 3, 100, 8192, 1.5]) expect(() => new Harness({ shardCount })).toThrowError(/power of two/);
  });

  it("reads validate keys and reserved names", () => {
    const h = new Harness();
    expect(errorCodeOf(h.read({ type: "get", key: "__system" }))).toBe("KEY_INVALID");
    expect(errorCodeOf(h.read({ type: "get", key: "a\nb" }))).toBe("KEY_INVALID");
    expect(errorCodeOf(h.read({ type: "mget", keys: "a" as unknown as string[] }))).toBe("INVALID");
    expect(errorCodeOf(h.read({ type: "nonsense" } as unknown as QueryInput))).toBe("INVALID");
    expect(errorCodeOf(h.read({ type: "scan", cursor: "99999" }))).toBe("INVALID");
  });
});

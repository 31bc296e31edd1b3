import fc from "fast-check";
import { ExactDecimal } from "../../../src/engine/decimal.js";
import type { Value } from "../../../src/engine/value.js";

/** fast-check generators of engine commands and queries over a small, colliding keyspace. */
const namespace = fc.constantFrom("", "", "t");
/** Few keys, so commands collide on them; separators and glob-relevant shapes included. */
const key = fc.constantFrom("a", "b", "ab", "a.b", "a:b", "b.a", ":a");
/** TTLs and clock steps share a grain of 500 ms so that reads land exactly on expiry boundaries. */
export const ttlMs = fc.constantFrom(500, 1000, 1500);
const scalar: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.bigInt({ min: -5n, max: 5n }),
  fc.constantFrom(2n ** 63n - 1n, -(2n ** 63n)),
  fc.double(),
  fc.integer({ min: -3, max: 3 }),
  fc.tuple(fc.bigInt({ min: -(10n ** 6n), max: 10n ** 6n }), fc.integer({ min: 0, max: 4 })).map(([mantissa, scale]) => new ExactDecimal(`${mantissa}e-${scale}`)),
  fc.string({ maxLength: 3 }),
  fc.uint8Array({ maxLength: 3 }),
);
export const value: fc.Arbitrary<Value> = fc.oneof(
  { weight: 4, arbitrary: scalar },
  fc.array(scalar, { maxLength: 3 }),
  fc.dictionary(fc.constantFrom("x", "y"), scalar).map((object) => new Map(Object.entries(object))),
);
const pattern = fc.array(fc.constantFrom("a", "b", ".", ":", "*", "**", "?", "[ab]", "[!a]", "[a-b]", "{a,b}", "{a.,:}"), { minLength: 1, maxLength: 4 }).map((parts) => parts.join(""));
const separator = fc.constantFrom(undefined, ".", ":");
const lockName = fc.constantFrom("L1", "L2");
const owner = fc.constantFrom("o1", "o2");
/** Absent three times out of four: most writes use few options, so most of them succeed. */
const optional = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });

/** Drops undefined fields so commands satisfy exactOptionalPropertyTypes and encode cleanly. */
function compact<T extends object>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, field]) => field !== undefined)) as T;
}

export const command = fc.oneof(
  fc
    .record({ namespace, key, value, ttlMs: optional(ttlMs), nx: fc.boolean(), xx: fc.boolean(), ifVersion: optional(fc.nat(6)), metadata: optional(value.filter((v) => v instanceof Map)), fence: optional(fc.record({ lock: lockName, token: fc.bigInt({ min: 0n, max: 3n }) })) })
    .map(({ nx, xx, ...rest }) => compact({ type: "set" as const, ...rest, nx: nx && !xx ? true : undefined, xx: xx && !nx ? true : undefined })),
  fc.record({ namespace, key, metadata: fc.constant(new Map([["m", 1n]])) }).map((fields) => ({ type: "setMetadata" as const, ...fields })),
  fc.record({ namespace, keys: fc.array(key, { maxLength: 3 }) }).map((fields) => ({ type: "delete" as const, ...fields })),
  fc.record({ namespace, key, delta: fc.oneof(fc.bigInt({ min: -3n, max: 3n }), fc.constantFrom(2n ** 62n, -(2n ** 62n))) }).map((fields) => ({ type: "incr" as const, ...fields })),
  fc.record({ namespace, key, delta: fc.constantFrom(0.5, -1, 2) }).map((fields) => ({ type: "incrFloat" as const, ...fields })),
  fc.record({ namespace, key, delta: fc.constantFrom("0.1", "0.2", "-1.5").map((text) => new ExactDecimal(text)) }).map((fields) => ({ type: "incrDecimal" as const, ...fields })),
  fc.record({ namespace, key, value }).map((fields) => ({ type: "append" as const, ...fields })),
  fc.record({ namespace, key, expected: value, newValue: value, ttlMs: optional(ttlMs) }).map((fields) => compact({ type: "cas" as const, ...fields })),
  fc.record({ namespace, entries: fc.array(fc.tuple(key, value), { maxLength: 3 }), ttlMs: optional(ttlMs) }).map((fields) => compact({ type: "mset" as const, ...fields })),
  fc.record({ namespace, pattern, separator }).map((fields) => compact({ type: "deletePattern" as const, ...fields })),
  fc.record({ namespace, key, ttlMs: fc.constantFrom(-5, 0, 1, 1000, 2500) }).map((fields) => ({ type: "expire" as const, ...fields })),
  fc.record({ namespace, key }).map((fields) => ({ type: "persist" as const, ...fields })),
  { weight: 3, arbitrary: fc.record({ namespace, name: lockName, owner, ttlMs }).map((fields) => ({ type: "lock" as const, ...fields })) },
  { weight: 3, arbitrary: fc.record({ namespace, name: lockName, owner }).map((fields) => ({ type: "unlock" as const, ...fields })) },
  { weight: 3, arbitrary: fc.record({ namespace, name: lockName, owner, ttlMs }).map((fields) => ({ type: "extend" as const, ...fields })) },
  fc.record({ limit: fc.integer({ min: 1, max: 3 }) }).map((fields) => ({ type: "purgeExpired" as const, ...fields })),
  fc.array(fc.record({ namespace, key }), { maxLength: 2 }).map((targets) => ({ type: "evict" as const, targets })),
  fc.constant({ type: "registerSession" as const }),
  fc.record({ namespace, key, value }).map((fields) => ({ type: "set" as const, ...fields })),
  fc.record({ namespace, key, value, ttlMs }).map((fields) => ({ type: "set" as const, ...fields })),
);

export const query = fc.oneof(
  fc.record({ namespace, key, type: fc.constantFrom("get", "getWithMeta", "getMetadata", "exists", "ttl" as const) }),
  fc.record({ namespace, keys: fc.array(key, { maxLength: 3 }), strict: fc.boolean() }).map((fields) => ({ type: "mget" as const, ...fields })),
  fc.record({ namespace, pattern, separator, type: fc.constantFrom("keys", "count", "getPattern" as const) }).map((fields) => compact(fields)),
  fc.record({ namespace, keys: optional(fc.array(key, { maxLength: 3 })) }).map((fields) => compact({ type: "storageSize" as const, ...fields })),
);


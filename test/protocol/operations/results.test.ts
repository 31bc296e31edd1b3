import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { requests, type OperationRequest } from "../../../src/client/requests.js";
import { Engine } from "../../../src/engine/engine.js";
import { fail, succeed, type Outcome } from "../../../src/engine/outcome.js";
import { validateValue } from "../../../src/engine/validation.js";
import { Decimal, type Value } from "../../../src/engine/value.js";
import { ERROR_CODES, KvError } from "../../../src/errors.js";
import type { ServerResponse } from "../../../src/server/connection.js";
import { encode } from "../../../src/engine/codec.js";
import { rejection, renderOutcome } from "../../../src/server/protocol/operations.js";
import { STATUS } from "../../../src/server/protocol/status.js";
import { INT64_MAX, INT64_MIN, representation, valueArbitrary } from "../../engine/values/arbitraries.js";
import { errorCodeOf, keyArbitrary, parse } from "./helpers.js";

/**
 * The whole server path of one request against a real engine: builder -> parseOperation ->
 * engine -> renderOutcome -> the builder's own result decoder.
 */
class Harness {
  readonly engine = new Engine({ shardCount: 4 });
  private index = 0;
  now = 1_000_000;

  outcome(request: OperationRequest<unknown>): Outcome<unknown> {
    const operation = parse(request);
    if (operation.kind === "write") return this.engine.apply(operation.command, { index: ++this.index, term: 1, now: this.now });
    if (operation.kind === "read") return this.engine.read(operation.query, this.now);
    if (operation.kind === "rejected") return rejection(operation.error);
    throw new Error(`${operation.kind} is served by the node, not the engine`);
  }

  response(request: OperationRequest<unknown>): ServerResponse {
    return renderOutcome(request.name, this.outcome(request));
  }

  /** The decoded result, checked against the value the engine itself produced. */
  run<Result>(request: OperationRequest<Result>): Result {
    const outcome = this.outcome(request);
    const result = request.decodeResult(renderOutcome(request.name, outcome));
    if (outcome.ok) expect(comparable(result)).toEqual(comparable(outcome.value));
    return result;
  }
}

/** Engine values compared by exact representation, structural results field by field. */
function comparable(result: unknown): unknown {
  if (result === null || typeof result !== "object" || result instanceof Map || Array.isArray(result) || result instanceof Uint8Array || Decimal.isDecimal(result)) {
    return representation(result);
  }
  return Object.fromEntries(Object.entries(result).map(([name, field]) => [name, comparable(field)]));
}

describe("results through the engine", () => {
  test("get, exists, ttl and NULL for a missing key", () => {
    const harness = new Harness();
    expect(harness.response(requests.get({ key: "missing" }))).toEqual({ status: STATUS.NULL, payload: encode(null) });
    expect(harness.run(requests.get({ key: "missing" }))).toBeNull();
    expect(harness.run(requests.exists({ key: "missing" }))).toBe(false);
    expect(harness.run(requests.ttl({ key: "missing" }))).toBe(-1);
    expect(harness.run(requests.set({ key: "k", value: "v", ttl: 2.5 }))).toBe(true);
    expect(harness.run(requests.get({ key: "k" }))).toBe("v");
    expect(harness.run(requests.exists({ key: "k" }))).toBe(true);
    expect(harness.run(requests.ttl({ key: "k" }))).toBe(2.5);
    expect(harness.run(requests.set({ key: "plain", value: 1n }))).toBe(true);
    expect(harness.run(requests.ttl({ key: "plain" }))).toBeNull();
    expect(harness.run(requests.setnx({ key: "k", value: "other" }))).toBe(false);
  });

  test("getWithMeta and getMetadata become their documented shapes, NULL when missing", () => {
    const harness = new Harness();
    expect(harness.run(requests.getWithMeta({ key: "k" }))).toBeNull();
    expect(harness.run(requests.getMetadata({ key: "k" }))).toBeNull();
    const metadata = new Map<string, Value>([["nested", new Map<string, Value>([["deep", [1n, new Decimal("0.5")]]])]]);
    harness.run(requests.set({ key: "k", value: new Decimal("12.345"), ttl: 10, metadata }));
    const entry = harness.run(requests.getWithMeta({ key: "k" }));
    expect(entry).toMatchObject({ version: 1, createVersion: 1, createdAt: harness.now, updatedAt: harness.now, expiresAt: harness.now + 10_000 });
    expect(representation(entry?.value)).toBe(representation(new Decimal("12.345")));
    expect(representation(harness.run(requests.getMetadata({ key: "k" })))).toBe(representation(metadata));
    expect(harness.run(requests.setMetadata({ key: "k", metadata: new Map() }))).toBe(true);
    expect(harness.run(requests.setMetadata({ key: "absent", metadata: new Map() }))).toBe(false);
    harness.run(requests.set({ key: "bare", value: null }));
    expect(harness.run(requests.getWithMeta({ key: "bare" }))).toMatchObject({ value: null, metadata: null, expiresAt: null });
  });

  test("counters: Int extremes, OVERFLOW, Float, exact Decimal, WRONG_TYPE", () => {
    const harness = new Harness();
    expect(harness.run(requests.incr({ key: "n", delta: INT64_MAX }))).toBe(INT64_MAX);
    expectError(() => harness.run(requests.incr({ key: "n" })), "OVERFLOW");
    expect(harness.run(requests.decr({ key: "n", delta: INT64_MAX }))).toBe(0n);
    expect(harness.run(requests.decr({ key: "n", delta: INT64_MAX }))).toBe(-INT64_MAX);
    expect(harness.run(requests.decr({ key: "n" }))).toBe(INT64_MIN);
    expectError(() => harness.run(requests.decr({ key: "n" })), "OVERFLOW");
    expect(harness.run(requests.incrFloat({ key: "f", delta: 0.5 }))).toBe(0.5);
    harness.run(requests.incrDecimal({ key: "d", delta: new Decimal("0.1") }));
    expect(harness.run(requests.incrDecimal({ key: "d", delta: new Decimal("0.2") })).toFixed()).toBe("0.3");
    expectError(() => harness.run(requests.incr({ key: "f" })), "WRONG_TYPE");
    expect(harness.run(requests.append({ key: "s", value: "ab" }))).toBe(2);
    expect(harness.run(requests.append({ key: "s", value: "c😀" }))).toBe(4);
    expectError(() => harness.run(requests.append({ key: "s", value: 1n })), "WRONG_TYPE");
    expect(harness.run(requests.cas({ key: "s", expected: "abc😀", newValue: "done" }))).toBe(true);
    expect(harness.run(requests.cas({ key: "s", expected: "abc😀", newValue: "again" }))).toBe(false);
  });

  test("multi-key operations, patterns, scan and sizes", () => {
    const harness = new Harness();
    expect(harness.run(requests.mset({ entries: [["a.1", 1n], ["a.2", "two"], ["b", [true]]] }))).toBe(true);
    expect(harness.run(requests.mget({ keys: ["a.1", "zz"] }))).toEqual(new Map([["a.1", 1n]]));
    const strict = expectError(() => harness.run(requests.mget({ keys: ["a.1", "zz", "yy"], strict: true })), "NOT_FOUND");
    expect(strict.details.keys).toEqual(["zz", "yy"]);
    expect(harness.run(requests.keys())).toEqual(["a.1", "a.2", "b"]);
    expect(harness.run(requests.keys({ pattern: "*", separator: "." }))).toEqual(["b"]);
    expect(harness.run(requests.count({ pattern: "a.*" }))).toBe(2);
    expect(harness.run(requests.getPattern({ pattern: "a.*" }))).toEqual(new Map<string, Value>([["a.1", 1n], ["a.2", "two"]]));
    const sizes = harness.run(requests.storageSize({ keys: ["a.1", "zz"] }));
    expect(sizes instanceof Map && [...sizes.keys()]).toEqual(["a.1"]);
    const total = harness.run(requests.storageSize());
    expect("total" in total && total.total).toBeGreaterThan(0);
    const scanned: string[] = [];
    let cursor = "0";
    for (let page = 0; page < 10; page++) {
      const result = harness.run(requests.scan({ cursor, count: 1 }));
      scanned.push(...result.keys);
      cursor = result.cursor;
      if (cursor === "0") break;
    }
    expect(cursor).toBe("0");
    expect(scanned.sort()).toEqual(["a.1", "a.2", "b"]);
    expect(harness.run(requests.deletePattern({ pattern: "a.*" }))).toBe(2);
    expect(harness.run(requests.delete({ keys: ["b", "b", "zz"] }))).toBe(1);
    expect(harness.run(requests.mdelete({ keys: ["zz"] }))).toBe(0);
  });

  test("a malformed glob pattern or scan cursor is an ERROR answer with code INVALID, not a closed connection", () => {
    const harness = new Harness();
    for (const request of [requests.keys({ pattern: "[a" }), requests.deletePattern({ pattern: "{a" }), requests.scan({ cursor: "nope" })]) {
      const response = harness.response(request);
      expect([request.name, response.status]).toEqual([request.name, STATUS.ERROR]);
      expectError(() => request.decodeResult(response), "INVALID");
    }
  });

  test("expiry: expire, persist, deleteExpired", () => {
    const harness = new Harness();
    harness.run(requests.mset({ entries: [["x", 1n], ["y", 2n], ["z", 3n]] }));
    expect(harness.run(requests.expire({ key: "x", ttl: 1 }))).toBe(true);
    expect(harness.run(requests.expire({ key: "y", ttl: 1 }))).toBe(true);
    expect(harness.run(requests.persist({ key: "y" }))).toBe(true);
    expect(harness.run(requests.persist({ key: "y" }))).toBe(false);
    expect(harness.run(requests.expire({ key: "z", ttl: -1 }))).toBe(true);
    expect(harness.run(requests.exists({ key: "z" }))).toBe(false);
    expect(harness.run(requests.expire({ key: "missing", ttl: 5 }))).toBe(false);
    harness.now += 1001;
    expect(harness.run(requests.deleteExpired())).toBe(1);
    expect(harness.run(requests.keys())).toEqual(["y"]);
  });

  test("locks: fencing token as Int, refusal with null token, extend and unlock; sessions", () => {
    const harness = new Harness();
    const granted = harness.run(requests.lock({ name: "job", owner: "w1", ttl: 30 }));
    expect(granted).toEqual({ acquired: true, token: 1n });
    expect(harness.run(requests.lock({ name: "job", owner: "w2", ttl: 30 }))).toEqual({ acquired: false, token: null });
    expect(harness.run(requests.set({ key: "out", value: 1n, fence: { lock: "job", token: 1n } }))).toBe(true);
    expectError(() => harness.run(requests.set({ key: "out", value: 2n, fence: { lock: "job", token: 99n } })), "FENCED");
    expect(harness.run(requests.extend({ name: "job", owner: "w1", ttl: 30 }))).toBe(true);
    expect(harness.run(requests.unlock({ name: "job", owner: "w2" }))).toBe(false);
    expect(harness.run(requests.unlock({ name: "job", owner: "w1" }))).toBe(true);
    const clientId = harness.run(requests.registerSession());
    expect(typeof clientId).toBe("bigint");
    const session = { clientId, sequence: 1, acknowledged: 0 };
    expect(harness.run(requests.incr({ key: "once", session }))).toBe(1n);
    expect(harness.run(requests.incr({ key: "once", session }))).toBe(1n);
  });

  test("any value stored with set comes back from get and getWithMeta exactly", () => {
    const harness = new Harness();
    fc.assert(
      fc.property(keyArbitrary, valueArbitrary, (key, value) => {
        harness.run(requests.set({ key, value, metadata: new Map([["v", value]]) }));
        const expected = representation(validateValue(value));
        const got = harness.run(requests.get({ key }));
        expect(representation(got)).toBe(expected);
        const entry = harness.run(requests.getWithMeta({ key }));
        expect(representation(entry?.value)).toBe(expected);
        expect(representation(entry?.metadata?.get("v"))).toBe(expected);
      }),
      { numRuns: 200 },
    );
  });
});

describe("renderOutcome and decodeResult directly", () => {
  test("every result shape round trips", () => {
    fc.assert(
      fc.property(valueArbitrary, (value) => {
        const decoded = requests.get({ key: "k" }).decodeResult(renderOutcome("get", succeed(value)));
        expect(representation(decoded)).toBe(representation(value));
        const info = requests.info().decodeResult(renderOutcome("info", succeed(new Map([["nested", value]]))));
        expect(representation(info)).toBe(representation(new Map([["nested", value]])));
      }),
      { numRuns: 200 },
    );
    expect(roundTrip(requests.lock({ name: "l", owner: "o", ttl: 1 }), { acquired: true, token: INT64_MAX })).toEqual({ acquired: true, token: INT64_MAX });
    expect(roundTrip(requests.scan(), { cursor: "0", keys: [] })).toEqual({ cursor: "0", keys: [] });
    expect(roundTrip(requests.storageSize(), { total: 0 })).toEqual({ total: 0 });
    expect(roundTrip(requests.storageSize({ keys: ["total"] }), new Map([["total", 9]]))).toEqual(new Map([["total", 9]]));
    expect(roundTrip(requests.incr({ key: "k" }), INT64_MIN)).toBe(INT64_MIN);
    expect(roundTrip(requests.incrFloat({ key: "k", delta: 1 }), -0)).toBe(-0);
    expect(roundTrip(requests.incrFloat({ key: "k", delta: 1 }), Number.NaN)).toBeNaN();
    expect(roundTrip(requests.ttl({ key: "k" }), null)).toBeNull();
    expect(roundTrip(requests.getMetadata({ key: "k" }), null)).toBeNull();
    expect(renderOutcome("ttl", succeed(null)).status).toBe(STATUS.OK);
  });

  test("a failed outcome is ERROR with its code, message and keys, for every code", () => {
    for (const code of ERROR_CODES) {
      const response = renderOutcome("mget", fail(code, `failed with ${code}`, ["a", "b"]));
      expect(response.status).toBe(STATUS.ERROR);
      const error = expectError(() => requests.mget({ keys: ["a"] }).decodeResult(response), code);
      expect(error.message).toBe(`failed with ${code}`);
      expect(error.details.keys).toEqual(["a", "b"]);
    }
    const withoutKeys = expectError(() => requests.set({ key: "k", value: 1n }).decodeResult(renderOutcome("set", fail("FENCED", "stale"))), "FENCED");
    expect(withoutKeys.details).toEqual({});
  });

  test("a result of the wrong shape, or NULL where a value is due, is INVALID", () => {
    const ok = (data: unknown) => ({ status: STATUS.OK, payload: encode(data) });
    expect(errorCodeOf(() => requests.exists({ key: "k" }).decodeResult(ok("yes")))).toBe("INVALID");
    expect(errorCodeOf(() => requests.incr({ key: "k" }).decodeResult(ok(1.5)))).toBe("INVALID");
    expect(errorCodeOf(() => requests.delete({ keys: [] }).decodeResult(ok(-1)))).toBe("INVALID");
    expect(errorCodeOf(() => requests.keys().decodeResult(ok(["a", 1n])))).toBe("INVALID");
    expect(errorCodeOf(() => requests.lock({ name: "l", owner: "o", ttl: 1 }).decodeResult(ok(new Map([["acquired", 1n]]))))).toBe("INVALID");
    expect(errorCodeOf(() => requests.getWithMeta({ key: "k" }).decodeResult(ok(new Map([["value", 1n]]))))).toBe("INVALID");
    expect(errorCodeOf(() => requests.exists({ key: "k" }).decodeResult({ status: STATUS.NULL, payload: encode(null) }))).toBe("INVALID");
    expect(errorCodeOf(() => requests.exists({ key: "k" }).decodeResult({ status: 0x09, payload: encode(null) }))).toBe("INVALID");
  });
});

function roundTrip<Result>(request: OperationRequest<Result>, value: unknown): Result {
  return request.decodeResult(renderOutcome(request.name, succeed(value)));
}

function expectError(body: () => unknown, code: string): KvError {
  try {
    body();
  } catch (error) {
    expect(error).toBeInstanceOf(KvError);
    expect((error as KvError).code).toBe(code);
    return error as KvError;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

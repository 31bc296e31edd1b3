import { describe, expect, test } from "vitest";
import { requests, type OperationRequest } from "../../../src/client/requests.js";
import { encode } from "../../../src/engine/codec.js";
import { DEFAULT_LIMITS } from "../../../src/engine/limits.js";
import { Decimal, type Value } from "../../../src/engine/value.js";
import type { ErrorCode } from "../../../src/errors.js";
import { COMMAND, type CommandName } from "../../../src/server/protocol/commands.js";
import { parseOperation } from "../../../src/server/protocol/operations.js";
import { INT64_MIN } from "../../engine/values/arbitraries.js";
import { errorCodeOf, nested, parse } from "./helpers.js";

/** The error code of a hand-written payload under a command name. */
function codeOfRaw(name: CommandName, payload: unknown): ErrorCode {
  return errorCodeOf(() => parseOperation(COMMAND[name], encode(payload), DEFAULT_LIMITS));
}

function codeOf(request: OperationRequest<unknown>): ErrorCode {
  return errorCodeOf(() => parse(request));
}

const LONG_KEY = "k".repeat(300);

describe("malformed requests are INVALID (the connection is then closed)", () => {
  test("payloads that are not maps, or not msgpack at all", () => {
    for (const payload of [[1, 2], "key", 7n, null, true]) expect(codeOfRaw("get", payload)).toBe("INVALID");
    for (const bytes of [new Uint8Array([0xc1]), new Uint8Array([0x81]), new Uint8Array(0), new Uint8Array([0x80, 0x80])]) {
      expect(errorCodeOf(() => parseOperation(COMMAND.get, bytes, DEFAULT_LIMITS))).toBe("INVALID");
    }
  });

  test("unknown codes and peer codes", () => {
    for (const code of [0x00, 0x22, 0x3f, 0x45, 0x7f, 0x80, 0x81, 0xff]) {
      expect(errorCodeOf(() => parseOperation(code, encode({ key: "k" }), DEFAULT_LIMITS))).toBe("INVALID");
    }
  });

  test("missing required fields", () => {
    const cases: readonly (readonly [CommandName, object])[] = [
      ["get", {}],
      ["get", { key: null }],
      ["set", { key: "k" }],
      ["set", { value: 1n }],
      ["cas", { key: "k", expected: 1n }],
      ["delete", {}],
      ["mset", {}],
      ["incrFloat", { key: "k" }],
      ["deletePattern", {}],
      ["expire", { key: "k" }],
      ["lock", { name: "l", owner: "o" }],
      ["unlock", { name: "l" }],
      ["setMetadata", { key: "k" }],
      ["memberAdd", { id: "n4" }],
      ["memberRemove", {}],
      ["memberPromote", {}],
    ];
    for (const [name, payload] of cases) expect([name, codeOfRaw(name, payload)]).toEqual([name, "INVALID"]);
  });

  test("fields of the wrong type", () => {
    const cases: readonly (readonly [CommandName, object])[] = [
      ["get", { key: 5n }],
      ["get", { key: new Uint8Array([107]) }],
      ["get", { key: "k", namespace: 1n }],
      ["get", { key: "k", consistency: "eventual" }],
      ["get", { key: "k", consistency: true }],
      ["get", { key: "k", timeoutMs: 1.5 }],
      ["get", { key: "k", timeoutMs: "100" }],
      ["mget", { keys: "a" }],
      ["mget", { keys: ["a", 1n] }],
      ["mget", { keys: ["a"], strict: 1n }],
      ["delete", { keys: [["a"]] }],
      ["set", { key: "k", value: 1n, nx: "yes" }],
      ["set", { key: "k", value: 1n, ttl: "10" }],
      ["set", { key: "k", value: 1n, ifVersion: 1.5 }],
      ["set", { key: "k", value: 1n, fence: ["job", 1n] }],
      ["set", { key: "k", value: 1n, fence: { lock: "job" } }],
      ["set", { key: "k", value: 1n, fence: { lock: "job", token: "1" } }],
      ["set", { key: "k", value: 1n, nx: true, xx: true }],
      ["set", { key: "k", value: 1n, session: "s" }],
      ["set", { key: "k", value: 1n, session: { clientId: 1n, sequence: 1 } }],
      ["set", { key: "k", value: 1n, session: { clientId: "1", sequence: 1, acknowledged: 0 } }],
      ["mset", { entries: { a: 1n } }],
      ["mset", { entries: [["a", 1n, 2n]] }],
      ["mset", { entries: [[1n, 1n]] }],
      ["mset", { entries: ["a"] }],
      ["keys", { pattern: 1n }],
      ["scan", { cursor: 0n }],
      ["scan", { count: "10" }],
      ["expire", { key: "k", ttl: "1" }],
      ["lock", { name: "l", owner: "o", ttl: [1] }],
      ["memberAdd", { id: 4n, address: "127.0.0.1:1" }],
      ["memberAdd", { id: "n4", address: "127.0.0.1:1", force: "yes" }],
      ["memberRemove", { id: "n4", force: 1n }],
      ["memberPromote", { id: 4n }],
      ["transferLeader", { to: 2n }],
    ];
    for (const [name, payload] of cases) expect([name, payload, codeOfRaw(name, payload)]).toEqual([name, payload, "INVALID"]);
  });
});

describe("bad keys, values and options are typed errors (the connection stays open)", () => {
  test("a 300-character, reserved, control-character or empty key is KEY_INVALID wherever a key or name goes", () => {
    for (const key of [LONG_KEY, "__system", "line\nbreak", "nul\u0000", ""]) {
      const cases: readonly OperationRequest<unknown>[] = [
        requests.get({ key }),
        requests.getWithMeta({ key }),
        requests.set({ key, value: 1n }),
        requests.incr({ key }),
        requests.cas({ key, expected: null, newValue: 1n }),
        requests.mget({ keys: ["ok", key] }),
        requests.delete({ keys: [key] }),
        requests.storageSize({ keys: [key] }),
        requests.mset({ entries: [["ok", 1n], [key, 2n]] }),
        requests.lock({ name: key, owner: "o", ttl: 1 }),
        requests.unlock({ name: "l", owner: key }),
        requests.set({ key: "k", value: 1n, fence: { lock: key, token: 1n } }),
        // "" is the default namespace, not an empty name.
        ...(key === "" ? [] : [requests.get({ key: "k", namespace: key }), requests.set({ key: "k", value: 1n, namespace: key })]),
      ];
      for (const request of cases) expect([request.name, key.length, codeOf(request)]).toEqual([request.name, key.length, "KEY_INVALID"]);
    }
  });

  test("a 256-character key is fine; with a shorter configured limit it is not", () => {
    const key = "k".repeat(256);
    expect(parse(requests.get({ key }))).toMatchObject({ kind: "read", query: { key } });
    expect(errorCodeOf(() => parse(requests.get({ key }), { ...DEFAULT_LIMITS, maxKeyLength: 255 }))).toBe("KEY_INVALID");
  });

  test("a value 65 levels deep is VALUE_INVALID; 64 levels is accepted", () => {
    const deep = nested(65) as Value;
    for (const request of [
      requests.set({ key: "k", value: deep }),
      requests.append({ key: "k", value: deep }),
      requests.cas({ key: "k", expected: deep, newValue: 1n }),
      requests.cas({ key: "k", expected: 1n, newValue: deep }),
      requests.mset({ entries: [["k", deep]] }),
      requests.set({ key: "k", value: 1n, metadata: new Map([["deep", nested(64) as Value]]) }),
    ]) {
      expect([request.name, codeOf(request)]).toEqual([request.name, "VALUE_INVALID"]);
    }
    expect(parse(requests.set({ key: "k", value: nested(64) as Value })).kind).toBe("write");
  });

  test("other bad values: undefined, non-string map keys, wrong delta types, out-of-limit Decimals, metadata that is no map", () => {
    expect(codeOfRaw("set", { key: "k", value: undefined })).toBe("VALUE_INVALID");
    expect(codeOfRaw("set", { key: "k", value: new Map([[1n, "x"]]) })).toBe("VALUE_INVALID");
    expect(codeOfRaw("incr", { key: "k", delta: 1.5 })).toBe("VALUE_INVALID");
    expect(codeOfRaw("incr", { key: "k", delta: "1" })).toBe("VALUE_INVALID");
    expect(codeOfRaw("incrFloat", { key: "k", delta: 1n })).toBe("VALUE_INVALID");
    expect(codeOfRaw("incrDecimal", { key: "k", delta: 1.5 })).toBe("VALUE_INVALID");
    expect(codeOf(requests.incrDecimal({ key: "k", delta: new Decimal("1e-29") }))).toBe("VALUE_INVALID");
    expect(codeOf(requests.incrDecimal({ key: "k", delta: new Decimal(2).pow(96) }))).toBe("VALUE_INVALID");
    expect(codeOfRaw("set", { key: "k", value: 1n, metadata: [1n] })).toBe("VALUE_INVALID");
    expect(codeOfRaw("setMetadata", { key: "k", metadata: "m" })).toBe("VALUE_INVALID");
    expect(codeOf(requests.set({ key: "k", value: 1n, ifVersion: -1 }))).toBe("VALUE_INVALID");
    expect(codeOf(requests.set({ key: "k", value: 1n, session: { clientId: 1n, sequence: 0, acknowledged: 0 } }))).toBe("VALUE_INVALID");
    expect(codeOf(requests.decr({ key: "k", delta: INT64_MIN }))).toBe("OVERFLOW");
  });

  test("a value over the size limit is TOO_LARGE", () => {
    const limits = { ...DEFAULT_LIMITS, maxValueBytes: 1024 };
    const big = new Uint8Array(2048);
    for (const request of [requests.set({ key: "k", value: big }), requests.append({ key: "k", value: "x".repeat(2048) }), requests.mset({ entries: [["k", [big]]] })]) {
      expect([request.name, errorCodeOf(() => parse(request, limits))]).toEqual([request.name, "TOO_LARGE"]);
    }
  });

  test("negative, zero, NaN, infinite or absurd TTLs are VALUE_INVALID; expire deletes at zero or less", () => {
    for (const ttl of [-1, 0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e12]) {
      for (const request of [
        requests.set({ key: "k", value: 1n, ttl }),
        requests.setnx({ key: "k", value: 1n, ttl }),
        requests.cas({ key: "k", expected: null, newValue: 1n, ttl }),
        requests.mset({ entries: [["k", 1n]], ttl }),
        requests.lock({ name: "l", owner: "o", ttl }),
        requests.extend({ name: "l", owner: "o", ttl }),
      ]) {
        expect([request.name, ttl, codeOf(request)]).toEqual([request.name, ttl, "VALUE_INVALID"]);
      }
    }
    for (const ttl of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e12]) {
      expect([ttl, codeOf(requests.expire({ key: "k", ttl }))]).toEqual([ttl, "VALUE_INVALID"]);
    }
    expect(parse(requests.expire({ key: "k", ttl: -1e12 }))).toMatchObject({ command: { type: "expire", ttlMs: 0 } });
  });

  test("timeouts outside 1..120000 ms and empty node ids are VALUE_INVALID", () => {
    for (const timeoutMs of [0, -5, 120_001, 10 ** 9]) expect([timeoutMs, codeOf(requests.ping({ timeoutMs }))]).toEqual([timeoutMs, "VALUE_INVALID"]);
    expect(codeOf(requests.memberAdd({ id: "", address: "127.0.0.1:1" }))).toBe("VALUE_INVALID");
    expect(codeOf(requests.memberAdd({ id: "n4", address: "" }))).toBe("VALUE_INVALID");
    expect(codeOf(requests.memberRemove({ id: "" }))).toBe("VALUE_INVALID");
  });

  test("too many keys in one command is TOO_LARGE", () => {
    const keys = Array.from({ length: 100_001 }, (_, index) => `k${index}`);
    expect(codeOf(requests.delete({ keys }))).toBe("TOO_LARGE");
  });
});

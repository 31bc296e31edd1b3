import { describe, expect, it } from "vitest";
import { KvError } from "../../../src/errors.js";
import { encode } from "../../../src/engine/codec.js";
import { ExactDecimal } from "../../../src/engine/decimal.js";
import { decodeCommand, encodeCommand, Engine, MAX_KEYS_PER_COMMAND, type Command } from "../../../src/engine/index.js";
import { comparable } from "./model.js";

const session = { clientId: 7n, sequence: 3, acknowledged: 2 };

const EVERY_COMMAND: Command[] = [
  { type: "set", namespace: "", key: "k", value: new Map([["a", [1n, 2.5, null]]]) },
  {
    type: "set",
    namespace: "tenant",
    key: "k",
    value: new Uint8Array([1]),
    ttlMs: 1500.5,
    nx: true,
    ifVersion: 0,
    metadata: new Map([["m", true]]),
    fence: { lock: "L", token: 9n },
    session,
  },
  { type: "set", namespace: "", key: "k", value: "v", xx: true },
  { type: "setMetadata", namespace: "", key: "k", metadata: new Map() },
  { type: "delete", namespace: "", keys: ["a", "b"] },
  { type: "mdelete", namespace: "", keys: [] },
  { type: "incr", namespace: "", key: "c", delta: -(2n ** 63n) },
  { type: "incrFloat", namespace: "", key: "c", delta: 0.25 },
  { type: "incrDecimal", namespace: "", key: "c", delta: new ExactDecimal("0.1") },
  { type: "append", namespace: "", key: "c", value: "x" },
  { type: "cas", namespace: "", key: "c", expected: null, newValue: 1n, ttlMs: 10 },
  { type: "mset", namespace: "", entries: [["a", 1n], ["b", "two"]], ttlMs: 5 },
  { type: "deletePattern", namespace: "", pattern: "a.*", separator: "." },
  { type: "expire", namespace: "", key: "a", ttlMs: -1 },
  { type: "persist", namespace: "", key: "a" },
  { type: "lock", namespace: "", name: "L", owner: "o", ttlMs: 1000 },
  { type: "unlock", namespace: "", name: "L", owner: "o" },
  { type: "extend", namespace: "", name: "L", owner: "o", ttlMs: 1000, session },
  { type: "purgeExpired", namespace: "", limit: 100 },
  { type: "evict", namespace: "", targets: [{ namespace: "t", key: "k" }] },
  { type: "registerSession", namespace: "" },
];

function codeOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    if (error instanceof KvError) return error.code;
    throw error;
  }
  return "no error";
}

describe("commands as data", () => {
  it("every command survives encode and decode unchanged", () => {
    for (const command of EVERY_COMMAND) {
      expect(comparable(decodeCommand(encodeCommand(command)))).toEqual(comparable(command));
    }
  });

  it("malformed input is INVALID, never a crash", () => {
    for (const bytes of [new Uint8Array([0xc1]), encode("set"), encode([]), encode([99, "", null]), encode([1, "", null, "k"]), encode([3, "", null, ["a"], "extra"])]) {
      expect(codeOf(() => decodeCommand(bytes))).toBe("INVALID");
    }
    expect(codeOf(() => decodeCommand(encode([1, "", null, "k", 1n, null, true, true, null, null, null])))).toBe("INVALID");
    expect(codeOf(() => decodeCommand(encode([14, "", [1n, 1, 1], "L", "o", 10])))).toBe("VALUE_INVALID");
    // A bad pattern is well-formed data: refused at the server's edge, and if it reaches the
    // log anyway, applying it fails the same way on every replica.
    for (const [pattern, separator] of [["[unclosed", null], ["*", "ab"]] as const) {
      const command = decodeCommand(encode([11, "", null, pattern, separator]));
      const outcome = new Engine().apply(command, { index: 1, term: 1, now: 0 });
      expect(outcome.ok ? "applied" : outcome.error.code).toBe("INVALID");
    }
  });

  it("bad keys, names and values get their own codes", () => {
    const set = (key: unknown, value: unknown): Uint8Array => encode([1, "", null, key, value, null, false, false, null, null, null]);
    expect(codeOf(() => decodeCommand(set("__reserved", 1n)))).toBe("KEY_INVALID");
    expect(codeOf(() => decodeCommand(set("a\u0000b", 1n)))).toBe("KEY_INVALID");
    expect(codeOf(() => decodeCommand(set("", 1n)))).toBe("KEY_INVALID");
    expect(codeOf(() => decodeCommand(encode([1, "bad\nns", null, "k", 1n, null, false, false, null, null, null])))).toBe("KEY_INVALID");
    expect(codeOf(() => decodeCommand(set("k", undefined)))).toBe("VALUE_INVALID");
    expect(codeOf(() => decodeCommand(set("k", 2n ** 64n - 1n)))).toBe("VALUE_INVALID");
    expect(codeOf(() => decodeCommand(encode([1, "", null, "k", 1n, 0, false, false, null, null, null])))).toBe("VALUE_INVALID");
    expect(codeOf(() => decodeCommand(encode([2, "", null, "k", "not a map"])))).toBe("VALUE_INVALID");
    const limits = { maxKeyLength: 8, maxValueBytes: 16, maxDepth: 2 };
    expect(codeOf(() => decodeCommand(set("k", "x".repeat(100)), limits))).toBe("TOO_LARGE");
    expect(codeOf(() => decodeCommand(set("k", [[[1n]]]), limits))).toBe("VALUE_INVALID");
    expect(codeOf(() => decodeCommand(set("k".repeat(9), 1n), limits))).toBe("KEY_INVALID");
    const tooMany = Array.from({ length: MAX_KEYS_PER_COMMAND + 1 }, () => "k");
    expect(codeOf(() => decodeCommand(encode([3, "", null, tooMany])))).toBe("TOO_LARGE");
  });

  it("decoded bytes are detached from the message they came from", () => {
    const command = decodeCommand(encodeCommand({ type: "set", namespace: "", key: "k", value: [new Uint8Array([1, 2])] }));
    const bytes = (command as unknown as { value: Uint8Array[] }).value[0] as Uint8Array;
    expect(bytes.constructor).toBe(Uint8Array);
    expect(bytes.buffer.byteLength).toBe(2);
  });
});

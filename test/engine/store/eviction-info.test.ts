import { describe, expect, it } from "vitest";
import { KvError } from "../../../src/errors.js";
import { MAX_EVICTION_SAMPLE } from "../../../src/engine/index.js";
import { Harness } from "./harness.js";

describe("eviction sampling (leader side, not replicated)", () => {
  it("returns expired keys first, then least recently used, within the sample size", () => {
    const h = new Harness({ shardCount: 1 });
    for (let index = 0; index < 20; index++) h.advance(10).set(`k${index}`, BigInt(index));
    h.set("short", 1n, { ttlMs: 5 });
    h.advance(100);
    for (let index = 0; index < 10; index++) h.get(`k${index}`);
    const sample = h.engine.sampleEvictionCandidates(MAX_EVICTION_SAMPLE, h.now);
    expect(sample.length).toBe(21);
    expect(sample[0]).toMatchObject({ key: "short", namespace: "", expired: true });
    const order = sample.slice(1).map((candidate) => candidate.key);
    expect(order.slice(0, 10).sort()).toEqual(Array.from({ length: 10 }, (_, index) => `k${index + 10}`).sort());
    expect(order.slice(10).sort()).toEqual(Array.from({ length: 10 }, (_, index) => `k${index}`).sort());
    for (const [position, candidate] of sample.entries()) {
      if (position > 1) expect(candidate.lastAccessedAt).toBeGreaterThanOrEqual((sample[position - 1] as { lastAccessedAt: number }).lastAccessedAt);
    }
  });

  it("samples at most sampleSize keys spread over shards, and rejects a bad size", () => {
    const h = new Harness({ shardCount: 64 });
    for (let index = 0; index < 2000; index++) h.set(`k${index}`, 1n);
    const sample = h.engine.sampleEvictionCandidates(16, h.now);
    expect(sample.length).toBe(16);
    expect(new Set(sample.map((candidate) => candidate.key)).size).toBe(16);
    expect(() => h.engine.sampleEvictionCandidates(0, h.now)).toThrow(KvError);
    expect(() => h.engine.sampleEvictionCandidates(MAX_EVICTION_SAMPLE + 1, h.now)).toThrow(KvError);
  });

  it("evict deletes the chosen keys on apply and counts the live ones", () => {
    const h = new Harness();
    h.set("a", 1n);
    h.write({ type: "set", namespace: "t", key: "b", value: 2n });
    expect(h.write({ type: "evict", targets: [{ namespace: "", key: "a" }, { namespace: "t", key: "b" }, { namespace: "", key: "zz" }] })).toBe(2);
    expect(h.query({ type: "info" })).toMatchObject({ keys: 0 });
  });
});

describe("info", () => {
  it("reports keys, memory, shards, applied position and per-command counters", () => {
    const h = new Harness({ shardCount: 32 });
    h.set("a", "x".repeat(1000));
    h.set("b", 1n);
    h.write({ type: "incr", key: "b", delta: 1n });
    h.write({ type: "lock", name: "L", owner: "o", ttlMs: 1000 });
    h.write({ type: "registerSession" });
    const info = h.query({ type: "info" }) as Record<string, unknown>;
    expect(info).toMatchObject({ keys: 2, shards: 32, locks: 1, sessions: 1, appliedIndex: h.index, appliedTerm: 1 });
    expect(info.commandCounts).toEqual({ set: 2, incr: 1, lock: 1, registerSession: 1 });
    expect(info.memoryBytes as number).toBeGreaterThan(1000);
    h.write({ type: "delete", keys: ["a"] });
    expect((h.query({ type: "info" }) as { memoryBytes: number }).memoryBytes).toBeLessThan(1000);
  });
});

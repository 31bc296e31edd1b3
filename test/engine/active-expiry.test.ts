import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";

describe("active expiry signal", () => {
  it("reports expired keys once their deadline passes, and not after they are purged", () => {
    const engine = new Engine({ shardCount: 4 });
    expect(engine.hasExpired(1_000_000)).toBe(false);
    engine.apply({ type: "set", namespace: "", key: "session", value: "x", ttlMs: 1000 }, { index: 1, term: 1, now: 5000 });
    expect(engine.hasExpired(5999)).toBe(false);
    expect(engine.hasExpired(6000)).toBe(true);
    const purged = engine.apply({ type: "purgeExpired", namespace: "", limit: 100 }, { index: 2, term: 1, now: 6000 });
    expect(purged).toEqual({ ok: true, value: 1 });
    expect(engine.hasExpired(10_000)).toBe(false);
  });

  it("never purges a key whose TTL was extended", () => {
    const engine = new Engine({ shardCount: 4 });
    engine.apply({ type: "set", namespace: "", key: "k", value: 1n, ttlMs: 1000 }, { index: 1, term: 1, now: 0 });
    engine.apply({ type: "expire", namespace: "", key: "k", ttlMs: 60_000 }, { index: 2, term: 1, now: 0 });
    expect(engine.apply({ type: "purgeExpired", namespace: "", limit: 100 }, { index: 3, term: 1, now: 2000 })).toEqual({ ok: true, value: 0 });
    expect(engine.hasExpired(2000)).toBe(false);
    expect(engine.read({ type: "get", namespace: "", key: "k" }, 2000)).toEqual({ ok: true, value: 1n });
  });
});

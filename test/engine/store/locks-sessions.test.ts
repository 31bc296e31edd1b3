import { describe, expect, it } from "vitest";
import type { LockResult } from "../../../src/engine/index.js";
import { errorCodeOf, Harness } from "./harness.js";

describe("locks", () => {
  it("tokens are log indexes, strictly increasing per lock; re-acquire keeps the token", () => {
    const h = new Harness();
    const first = h.write({ type: "lock", name: "L", owner: "a", ttlMs: 1000 }) as LockResult;
    expect(first).toEqual({ acquired: true, token: BigInt(h.index) });
    expect(h.write({ type: "lock", name: "L", owner: "b", ttlMs: 1000 })).toEqual({ acquired: false, token: null });
    h.advance(900);
    expect(h.write({ type: "lock", name: "L", owner: "a", ttlMs: 1000 })).toEqual(first);
    h.advance(999);
    expect(h.write({ type: "lock", name: "L", owner: "b", ttlMs: 1000 })).toEqual({ acquired: false, token: null });
    h.advance(1);
    const second = h.write({ type: "lock", name: "L", owner: "b", ttlMs: 1000 }) as LockResult;
    expect(second.acquired).toBe(true);
    expect(second.token as bigint).toBeGreaterThan(first.token as bigint);
    expect(h.write({ type: "unlock", name: "L", owner: "b" })).toBe(true);
    const third = h.write({ type: "lock", name: "L", owner: "a", ttlMs: 1000 }) as LockResult;
    expect(third.token as bigint).toBeGreaterThan(second.token as bigint);
  });

  it("unlock and extend only by the owner and only before expiry", () => {
    const h = new Harness();
    h.write({ type: "lock", name: "L", owner: "a", ttlMs: 1000 });
    expect(h.write({ type: "unlock", name: "L", owner: "b" })).toBe(false);
    expect(h.write({ type: "extend", name: "L", owner: "b", ttlMs: 5000 })).toBe(false);
    h.advance(999);
    expect(h.write({ type: "extend", name: "L", owner: "a", ttlMs: 1000 })).toBe(true);
    h.advance(999);
    expect(h.write({ type: "lock", name: "L", owner: "b", ttlMs: 1000 })).toMatchObject({ acquired: false });
    h.advance(1);
    expect(h.write({ type: "extend", name: "L", owner: "a", ttlMs: 1000 })).toBe(false);
    expect(h.write({ type: "unlock", name: "L", owner: "a" })).toBe(false);
  });

  it("locks are confined to their namespace and are not user keys", () => {
    const h = new Harness();
    h.write({ type: "lock", name: "L", owner: "a", ttlMs: 1000 });
    expect(h.write({ type: "lock", name: "L", owner: "b", ttlMs: 1000, namespace: "t1" })).toMatchObject({ acquired: true });
    expect(h.query({ type: "keys", pattern: "*" })).toEqual([]);
  });

  it("fenced writes need the current token of a held lock", () => {
    const h = new Harness();
    const { token } = h.write({ type: "lock", name: "L", owner: "a", ttlMs: 1000 }) as LockResult;
    const fence = { lock: "L", token: token as bigint };
    expect(h.set("k", 1n, { fence })).toBe(true);
    expect(errorCodeOf(h.apply({ type: "set", key: "k", value: 2n, fence: { lock: "L", token: (token as bigint) + 1n } }))).toBe("FENCED");
    expect(errorCodeOf(h.apply({ type: "set", key: "k", value: 2n, fence: { lock: "other", token: token as bigint } }))).toBe("FENCED");
    h.advance(1000);
    expect(errorCodeOf(h.apply({ type: "set", key: "k", value: 3n, fence }))).toBe("FENCED");
    const next = h.write({ type: "lock", name: "L", owner: "b", ttlMs: 1000 }) as LockResult;
    expect(errorCodeOf(h.apply({ type: "set", key: "k", value: 3n, fence }))).toBe("FENCED");
    expect(h.set("k", 4n, { fence: { lock: "L", token: next.token as bigint } })).toBe(true);
    expect(h.get("k")).toBe(4n);
  });
});

describe("exactly-once sessions", () => {
  function registered(h: Harness): bigint {
    return h.write({ type: "registerSession" }) as bigint;
  }

  it("a duplicate gets the recorded result and is not applied again", () => {
    const h = new Harness();
    const clientId = registered(h);
    expect(clientId).toBe(BigInt(h.index));
    const incr = { type: "incr", key: "c", delta: 1n, session: { clientId, sequence: 1, acknowledged: 0 } } as const;
    expect(h.write(incr)).toBe(1n);
    expect(h.write(incr)).toBe(1n);
    expect(h.get("c")).toBe(1n);
    expect(h.write({ ...incr, session: { clientId, sequence: 2, acknowledged: 1 } })).toBe(2n);
    expect(h.get("c")).toBe(2n);
    // Sequence 1 was acknowledged: its result is gone and a replay is refused, not re-applied.
    expect(errorCodeOf(h.apply(incr))).toBe("INVALID");
    expect(h.get("c")).toBe(2n);
  });

  it("recorded errors are replayed too, and unknown sessions are NOT_FOUND", () => {
    const h = new Harness();
    const clientId = registered(h);
    h.set("s", "text");
    const bad = { type: "incr", key: "s", delta: 1n, session: { clientId, sequence: 1, acknowledged: 0 } } as const;
    expect(errorCodeOf(h.apply(bad))).toBe("WRONG_TYPE");
    h.set("s", 1n);
    expect(errorCodeOf(h.apply(bad))).toBe("WRONG_TYPE");
    expect(errorCodeOf(h.apply({ ...bad, session: { clientId: 12345n, sequence: 1, acknowledged: 0 } }))).toBe("NOT_FOUND");
  });

  it("unacknowledged results are bounded: past the bound the write fails with BUSY, unapplied", () => {
    const h = new Harness({ sessions: { maxResultsPerSession: 3 } });
    const clientId = registered(h);
    for (let sequence = 1; sequence <= 3; sequence++) h.write({ type: "incr", key: "c", delta: 1n, session: { clientId, sequence, acknowledged: 0 } });
    expect(errorCodeOf(h.apply({ type: "incr", key: "c", delta: 1n, session: { clientId, sequence: 4, acknowledged: 0 } }))).toBe("BUSY");
    expect(h.get("c")).toBe(3n);
    expect(h.write({ type: "incr", key: "c", delta: 1n, session: { clientId, sequence: 4, acknowledged: 3 } })).toBe(4n);
  });

  it("sessions expire after the timeout of inactivity, by log time", () => {
    const h = new Harness({ sessions: { sessionTimeoutMs: 1000 } });
    const idle = registered(h);
    const active = registered(h);
    for (let sequence = 1; sequence <= 3; sequence++) {
      h.advance(600);
      h.write({ type: "incr", key: "c", delta: 1n, session: { clientId: active, sequence, acknowledged: 0 } });
    }
    expect(errorCodeOf(h.apply({ type: "incr", key: "c", delta: 1n, session: { clientId: idle, sequence: 1, acknowledged: 0 } }))).toBe("NOT_FOUND");
    expect(h.query({ type: "info" })).toMatchObject({ sessions: 1 });
    h.advance(1000);
    expect(errorCodeOf(h.apply({ type: "incr", key: "c", delta: 1n, session: { clientId: active, sequence: 4, acknowledged: 0 } }))).toBe("NOT_FOUND");
  });

  it("a retried write counts as activity", () => {
    const h = new Harness({ sessions: { sessionTimeoutMs: 1000 } });
    const clientId = registered(h);
    const incr = { type: "incr", key: "c", delta: 1n, session: { clientId, sequence: 1, acknowledged: 0 } } as const;
    h.write(incr);
    for (let retry = 0; retry < 3; retry++) expect(h.advance(600).write(incr)).toBe(1n);
    expect(h.query({ type: "info" })).toMatchObject({ sessions: 1 });
  });
});

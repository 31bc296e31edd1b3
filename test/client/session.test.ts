import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { WriteSession } from "../../src/client/session.js";
import type { SessionStamp } from "../../src/engine/sessions.js";

/** A fake registration: hands out client ids 100, 101, ... and counts the calls. */
function fakeRegistrar(): { register: () => Promise<bigint>; readonly calls: () => number } {
  let calls = 0;
  return {
    register: () => Promise.resolve(BigInt(100 + calls++)),
    calls: () => calls,
  };
}

describe("WriteSession", () => {
  test("registers lazily and once for concurrent first writes", async () => {
    const registrar = fakeRegistrar();
    const session = new WriteSession(registrar.register);
    expect(session.id).toBeNull();
    const stamps = await Promise.all([session.begin(), session.begin(), session.begin()]);
    expect(registrar.calls()).toBe(1);
    expect(stamps.map((stamp) => [stamp.clientId, stamp.sequence])).toEqual([
      [100n, 1],
      [100n, 2],
      [100n, 3],
    ]);
  });

  test("a failed registration is tried again by the next write", async () => {
    let attempts = 0;
    const session = new WriteSession(() => (++attempts === 1 ? Promise.reject(new Error("down")) : Promise.resolve(7n)));
    await expect(session.begin()).rejects.toThrow("down");
    expect((await session.begin()).clientId).toBe(7n);
  });

  test("acknowledged is the highest sequence with everything up to it settled (reference model)", async () => {
    const operation = fc.oneof(fc.constant({ kind: "begin" as const }), fc.nat(40).map((pick) => ({ kind: "settle" as const, pick })));
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { maxLength: 60 }), async (operations) => {
        const session = new WriteSession(fakeRegistrar().register);
        const open: SessionStamp[] = [];
        const settled = new Set<number>();
        let issued = 0;
        for (const step of operations) {
          if (step.kind === "begin") {
            const stamp = await session.begin();
            issued += 1;
            expect(stamp.sequence).toBe(issued);
            let expected = 0;
            while (settled.has(expected + 1)) expected += 1;
            expect(stamp.acknowledged).toBe(expected);
            expect(stamp.acknowledged).toBeLessThan(stamp.sequence);
            open.push(stamp);
          } else if (open.length > 0) {
            const [stamp] = open.splice(step.pick % open.length, 1);
            if (stamp === undefined) continue;
            session.settle(stamp);
            settled.add(stamp.sequence);
            const refreshed = open[0] === undefined ? undefined : session.refresh(open[0]);
            if (refreshed !== undefined) expect(refreshed.acknowledged).toBe(Math.min(...open.map((o) => o.sequence)) - 1);
          }
        }
        expect(session.unsettledCount).toBe(open.length);
      }),
      { numRuns: 200 },
    );
  });

  test("a retry keeps its client id and sequence", async () => {
    const session = new WriteSession(fakeRegistrar().register);
    const first = await session.begin();
    const second = await session.begin();
    session.settle(first);
    expect(session.refresh(second)).toEqual({ clientId: 100n, sequence: 2, acknowledged: 1 });
  });

  test("an expired session registers again and numbers from 1; stale stamps are ignored", async () => {
    const registrar = fakeRegistrar();
    const session = new WriteSession(registrar.register);
    const old = await session.begin();
    const other = await session.begin();
    session.expire(old);
    expect(session.id).toBeNull();
    session.expire(other); // the same expiry seen by a second write: nothing more to do
    const fresh = await session.begin();
    expect(fresh).toEqual({ clientId: 101n, sequence: 1, acknowledged: 0 });
    expect(registrar.calls()).toBe(2);
    session.settle(other); // a stamp of the old session no longer counts
    expect(session.unsettledCount).toBe(1);
    expect(session.refresh(old)).toBe(old);
  });
});

import { describe, expect, test } from "vitest";
import { Router } from "../../src/client/router.js";

const SETTINGS = { connectionsPerNode: 2, maxInFlight: 16 };

describe("Router", () => {
  test("leader-routed calls go to the leader; serializable reads round-robin over members", () => {
    const router = new Router(["a:1", "b:1", "c:1"], SETTINGS);
    router.setLeader("b:1");
    expect([0, 1, 2].map(() => router.pick("leader"))).toEqual(["b:1", "b:1", "b:1"]);
    expect(router.pick("preferLeader")).toBe("b:1");
    expect(new Set([0, 1, 2].map(() => router.pick("any")))).toEqual(new Set(["a:1", "b:1", "c:1"]));
    router.close();
  });

  test("a node marked down is skipped until its time is up, then probed again", () => {
    const router = new Router(["a:1", "b:1"], SETTINGS);
    const now = 1_000_000;
    router.setLeader("a:1");
    router.markDown("a:1", now);
    expect(router.leader).toBeNull();
    expect([0, 1, 2].map(() => router.pick("leader", now))).toEqual(["b:1", "b:1", "b:1"]);
    router.markDown("b:1", now);
    // Everyone down: the one that comes back first is tried rather than nothing.
    expect(router.pick("any", now)).toBe("a:1");
    expect(new Set([0, 1].map(() => router.pick("any", now + 60_000)))).toEqual(new Set(["a:1", "b:1"]));
    router.markUp("a:1");
    expect(router.pick("leader", now)).toBe("a:1");
    router.close();
  });

  test("learned members replace the old ones, seeds stay; a leader hint adds its node", () => {
    const router = new Router(["seed:1"], SETTINGS);
    router.learnMembers(["x:1", "y:1"]);
    expect(router.addresses.sort()).toEqual(["seed:1", "x:1", "y:1"]);
    router.setLeader("x:1");
    router.learnMembers(["y:1"]);
    expect(router.addresses.sort()).toEqual(["seed:1", "y:1"]);
    expect(router.leader).toBeNull();
    router.setLeader("z:1");
    expect(router.addresses.sort()).toEqual(["seed:1", "y:1", "z:1"]);
    router.close();
  });

  test("a closed router refuses connections", async () => {
    const router = new Router(["a:1"], SETTINGS);
    router.close();
    await expect(router.connection("a:1", 100)).rejects.toMatchObject({ code: "CONNECTION" });
  });
});

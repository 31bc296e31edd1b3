import { describe, expect, test } from "vitest";
import { KvClient } from "../../src/index.js";
import { memberName } from "../../src/server/identity.js";
import { pollUntil } from "../../src/util/processes.js";
import { startCluster } from "./harness.js";

const DEADLINE_MS = 20_000;

describe("membership changes on real processes", () => {
  test("a node started with --join is added (learner, caught up, promoted), the leader removes itself, and no write is lost", async () => {
    const cluster = await startCluster({ size: 3, spares: 1 });
    const founders = cluster.nodes.filter((node) => node.founding).map((node) => node.address);
    await cluster.waitForLeader(DEADLINE_MS);
    const client = await KvClient.connect(`kv://${founders.join(",")}`, { timeoutMs: DEADLINE_MS });
    try {
      for (let index = 0; index < 50; index++) await client.set(`before:${index}`, index);

      cluster.join("n4");
      await client.addMember("n4", cluster.node("n4").address);
      const joined = await pollUntil(DEADLINE_MS, async () => {
        const status = await cluster.status("n4").catch(() => null);
        return status !== null && status.membership.voters.includes(status.id) && status.applied >= 50 ? status : null;
      });
      // A node that joined is a new incarnation: its Raft id is `n4~<incarnation>`.
      expect(joined?.id).toMatch(/^n4~[0-9a-f]{8}$/);
      expect([...(joined?.membership.voters ?? [])].map(memberName).sort()).toEqual(["n1", "n2", "n3", "n4"]);

      // The leader removes itself: it steps down once the change commits, and the rest go on.
      const leader = await cluster.waitForLeader(DEADLINE_MS);
      await client.removeMember(leader.id);
      const successor = await pollUntil(DEADLINE_MS, async () => {
        const statuses = await cluster.statuses();
        const leaders = [...statuses.values()].filter((status) => status.role === "leader" && status.id !== leader.id);
        return leaders.length === 1 ? leaders[0] ?? null : null;
      });
      expect(successor?.membership.voters).not.toContain(leader.id);
      expect(successor?.membership.voters).toHaveLength(3);

      for (let index = 0; index < 50; index++) await client.set(`after:${index}`, index);
      const reader = await KvClient.connect(`kv://${cluster.node("n4").address}`, { timeoutMs: DEADLINE_MS, consistency: "serializable" });
      try {
        const caughtUp = await pollUntil(DEADLINE_MS, async () => ((await reader.count("*")) === 100 ? true : null));
        expect(caughtUp).toBe(true);
        expect(await reader.get("before:7")).toBe(7);
        expect(await reader.get("after:49")).toBe(49);
      } finally {
        await reader.close();
      }
    } finally {
      await client.close();
    }
  });
});

import { describe, expect, test } from "vitest";
import { CLUSTER_NAME } from "../../jepsen-lite/control.js";
import { describeMessage, FORGERY_METHODS, forgedMessages, isForgeryAccepted } from "../../jepsen-lite/forged-peer.js";
import { KvClient } from "../../src/index.js";
import { pollUntil } from "../../src/util/processes.js";
import { startCluster } from "./harness.js";

const DEADLINE_MS = 20_000;

/**
 * A process that knows the cluster's name and its members' ids but not the cluster secret gets
 * no Raft message accepted: forged votes (for a huge term and the next one), an append and a
 * heartbeat in the leader's term, a snapshot at index 5000 — over no handshake, a hello without
 * a proof, a random proof, and the product's own dialer with no or a wrong secret.
 */
describe("forged peer traffic", () => {
  test("every forged message is refused; the cluster's term, log and data are unchanged and no node exits", async () => {
    const cluster = await startCluster({ size: 3, nodeOptions: ["--cluster-id", CLUSTER_NAME] });
    const leader = await cluster.waitForLeader(DEADLINE_MS);
    const client = await KvClient.connect(`kv://${cluster.addresses.join(",")}`, { timeoutMs: DEADLINE_MS });
    try {
      await client.set("real", "value");
      const before = await cluster.waitForQuiescence(DEADLINE_MS);
      const leaderStatus = before.get(leader.id);
      if (leaderStatus === undefined) throw new Error("the leader did not answer");
      const accepted: string[] = [];
      for (const [id, target] of before) {
        for (const message of forgedMessages(target, leaderStatus, Date.now())) {
          for (const method of FORGERY_METHODS) {
            if (await isForgeryAccepted(cluster.node(id).address, message, method)) accepted.push(`${id}: ${describeMessage(message)} ${method.name}`);
          }
        }
      }
      expect(accepted).toEqual([]);

      cluster.assertNoCrash();
      const after = await cluster.statuses();
      for (const [id, status] of before) {
        const now = after.get(id);
        expect({ id, term: now?.term, lastIndex: now?.lastIndex, commit: now?.commit, leader: now?.leader }).toEqual({
          id,
          term: status.term,
          lastIndex: status.lastIndex,
          commit: status.commit,
          leader: status.leader,
        });
      }
      expect(await client.get("real")).toBe("value");
      expect(await client.get("jepsen-lite/forged")).toBeNull();
      const refused = await pollUntil(DEADLINE_MS, async () => {
        const metrics = await cluster.metrics(leader.id);
        return (metrics.get("kv_peer_handshakes_refused_total") ?? 0) > 0 ? true : null;
      });
      expect(refused).toBe(true);
      // The cluster still works after the attack.
      await client.set("after", 1);
      expect(await client.get("after")).toBe(1);
    } finally {
      await client.close();
    }
  });

  test("a single node accepts no forged peer either", async () => {
    const cluster = await startCluster({ size: 1, nodeOptions: ["--cluster-id", CLUSTER_NAME] });
    const leader = await cluster.waitForLeader(DEADLINE_MS);
    const status = (await cluster.statuses()).get(leader.id);
    if (status === undefined) throw new Error("the node did not answer");
    for (const message of forgedMessages(status, status, Date.now())) {
      for (const method of FORGERY_METHODS) expect(await isForgeryAccepted(leader.address, message, method)).toBe(false);
    }
    cluster.assertNoCrash();
    expect((await cluster.status(leader.id)).term).toBe(status.term);
  });
});

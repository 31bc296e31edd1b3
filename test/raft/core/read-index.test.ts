import { describe, expect, it } from "vitest";
import { Cluster, membershipOf } from "./cluster.js";

describe("ReadIndex (dissertation §6.4)", () => {
  it("confirms a batch of leader reads with one heartbeat round", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.propose("n1", "a");
    cluster.delivered = [];
    const n1 = cluster.node("n1");
    for (const context of [1, 2, 3, 4, 5]) n1.readIndex(context);
    cluster.stabilize();
    const readRounds = new Set(cluster.deliveredOf("heartbeat").map((message) => message.readRound));
    expect([...readRounds]).toEqual([1]);
    expect(cluster.deliveredOf("heartbeat")).toHaveLength(2);
    expect(cluster.member("n1").readStates).toEqual([1, 2, 3, 4, 5].map((context) => ({ index: 2, context })));
  });

  it("releases reads only once a quorum acknowledged their round", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.isolate("n1");
    cluster.node("n1").readIndex(7);
    cluster.stabilize();
    expect(cluster.member("n1").readStates).toEqual([]);
    cluster.heal();
    cluster.tick(1, ["n1"]);
    expect(cluster.member("n1").readStates).toEqual([{ index: 1, context: 7 }]);
  });

  it("a follower forwards its reads in one message and serves them at the leader's index", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.propose("n1", "a", "b");
    cluster.delivered = [];
    const n2 = cluster.node("n2");
    n2.readIndex(10);
    n2.readIndex(11);
    cluster.stabilize();
    expect(cluster.deliveredOf("readIndex")).toEqual([expect.objectContaining({ from: "n2", to: "n1", contexts: [10, 11] })]);
    expect(cluster.member("n2").readStates).toEqual([
      { index: 3, context: 10 },
      { index: 3, context: 11 },
    ]);
  });

  it("a single voter confirms reads at once", () => {
    const cluster = Cluster.of(["solo"]);
    cluster.elect("solo");
    cluster.node("solo").readIndex(3);
    cluster.stabilize();
    expect(cluster.member("solo").readStates).toEqual([{ index: 1, context: 3 }]);
  });

  it("a new leader holds reads until an entry of its term commits", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    const n1 = cluster.node("n1");
    n1.campaign();
    for (let round = 0; round < 10 && n1.status().role !== "leader"; round++) {
      cluster.processReadies();
      cluster.deliverAll();
    }
    expect(n1.status().role).toBe("leader");
    expect(n1.status().commit).toBe(0);
    n1.readIndex(42);
    cluster.stabilize();
    expect(n1.status().commit).toBe(1);
    expect(cluster.member("n1").readStates).toEqual([{ index: 1, context: 42 }]);
  });

  it("drops a read when there is no leader to ask", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.node("n2").readIndex(5);
    cluster.stabilize();
    expect(cluster.member("n2").droppedReads).toEqual([5]);
  });

  it("fails pending reads, local and forwarded, when the leader loses leadership", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.dropWhen = (message) => message.type === "heartbeatResponse";
    cluster.node("n1").readIndex(1);
    cluster.node("n2").readIndex(2);
    cluster.stabilize();
    expect(cluster.member("n1").readStates).toEqual([]);
    expect(cluster.deliveredOf("readIndex")).toHaveLength(1);
    // n1 is cut off: check-quorum deposes it and n2, n3 elect a new leader.
    cluster.isolate("n1");
    cluster.tickUntilLeader(300, ["n2", "n3"]);
    cluster.tick(20);
    expect(cluster.node("n1").status().role).toBe("follower");
    expect(cluster.member("n1").droppedReads).toEqual([1]);
    expect(cluster.member("n2").droppedReads).toEqual([2]);
    expect(cluster.member("n2").readStates).toEqual([]);
  });

  it("a learner forwards reads too, and its acknowledgements never count", () => {
    const membership = membershipOf(["n1", "n2"], ["l1"]);
    const cluster = new Cluster({ n1: { membership }, n2: { membership }, l1: { membership } });
    cluster.elect("n1");
    cluster.cut("n1", "n2");
    cluster.node("n1").readIndex(1);
    cluster.stabilize();
    expect(cluster.member("n1").readStates).toEqual([]);
    cluster.heal();
    cluster.tick(1, ["n1"]);
    expect(cluster.member("n1").readStates).toEqual([{ index: 1, context: 1 }]);
    cluster.node("l1").readIndex(9);
    cluster.stabilize();
    expect(cluster.member("l1").readStates).toEqual([{ index: 1, context: 9 }]);
  });
});

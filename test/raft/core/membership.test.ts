import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../src/raft/memory-storage.js";
import { defaultRaftConfig, RaftNode } from "../../../src/raft/node.js";
import type { LogEntry, MembershipChange, Message } from "../../../src/raft/types.js";
import { Cluster, command, membershipOf, seededRandom } from "./cluster.js";

const EMPTY = membershipOf([]);

/** A 3-voter cluster led by n1, plus n4 started empty (it learns the configuration from the log). */
function clusterWithNewcomer(): Cluster {
  const cluster = Cluster.of(["n1", "n2", "n3"]);
  cluster.add("n4", { membership: EMPTY });
  cluster.elect("n1");
  cluster.propose("n1", "a");
  return cluster;
}

function change(cluster: Cluster, leader: string, membershipChange: MembershipChange): void {
  cluster.node(leader).proposeMembershipChange(membershipChange);
  cluster.stabilize();
  cluster.tick(1, [leader]);
}

describe("single-server membership changes (dissertation §4.1)", () => {
  it("adds a learner that replicates the log but never counts toward commit", () => {
    const cluster = clusterWithNewcomer();
    change(cluster, "n1", { type: "addLearner", node: "n4", address: "addr-n4" });
    expect(cluster.node("n4").status().membership.learners).toEqual(["n4"]);
    expect(cluster.member("n4").applied).toEqual(["a"]);
    cluster.cut("n1", "n2");
    cluster.cut("n1", "n3");
    const { firstIndex } = cluster.node("n1").propose([command("b")]);
    cluster.stabilize();
    cluster.tick(2, ["n1", "n4"]);
    expect(cluster.node("n4").status().lastIndex).toBe(firstIndex);
    expect(cluster.node("n1").status().commit).toBe(firstIndex - 1);
  });

  it("promotes a learner, after which it votes and counts", () => {
    const cluster = clusterWithNewcomer();
    change(cluster, "n1", { type: "addLearner", node: "n4", address: "addr-n4" });
    change(cluster, "n1", { type: "promote", node: "n4" });
    for (const id of ["n1", "n2", "n3", "n4"]) {
      expect(cluster.node(id).status().membership.voters).toEqual(["n1", "n2", "n3", "n4"]);
    }
    // Four voters: n1 + n4 + n2 are a quorum without n3; n1 + n4 alone are not.
    cluster.isolate("n3");
    cluster.propose("n1", "b");
    expect(cluster.member("n4").applied).toEqual(["a", "b"]);
    cluster.cut("n1", "n2");
    const { firstIndex } = cluster.node("n1").propose([command("c")]);
    cluster.stabilize();
    expect(cluster.node("n1").status().commit).toBe(firstIndex - 1);
  });

  it("removes a follower, which then never campaigns", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    change(cluster, "n1", { type: "remove", node: "n3" });
    expect(cluster.node("n1").status().membership.voters).toEqual(["n1", "n2"]);
    expect(Object.keys(cluster.node("n1").status().progress).sort()).toEqual(["n1", "n2"]);
    cluster.isolate("n3");
    cluster.tick(100, ["n3"]);
    expect(cluster.node("n3").status().role).toBe("follower");
    expect(cluster.node("n3").status().term).toBe(1);
    cluster.propose("n1", "b");
    expect(cluster.member("n2").applied).toEqual(["b"]);
  });

  it("a removed leader steps down once the removal commits and the rest elect a new leader", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.node("n1").proposeMembershipChange({ type: "remove", node: "n1" });
    cluster.stabilize();
    expect(cluster.node("n1").status().role).toBe("follower");
    expect(cluster.node("n2").status().commit).toBe(2);
    const next = cluster.tickUntilLeader(300, ["n2", "n3"]);
    expect(cluster.node(next).status().membership.voters).toEqual(["n2", "n3"]);
    cluster.tick(50);
    expect(cluster.node("n1").status().role).toBe("follower");
    cluster.propose(next, "after");
    expect(cluster.member(next === "n2" ? "n3" : "n2").applied).toEqual(["after"]);
  });

  it("allows one uncommitted change at a time", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.add("n4", { membership: EMPTY });
    cluster.elect("n1");
    cluster.isolate("n1");
    cluster.node("n1").proposeMembershipChange({ type: "addLearner", node: "n4", address: "addr-n4" });
    expect(() => cluster.node("n1").proposeMembershipChange({ type: "remove", node: "n3" })).toThrow(
      expect.objectContaining({ code: "MEMBERSHIP_CHANGE_PENDING" }) as Error,
    );
  });

  it("a new leader changes membership only after committing an entry of its term", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"], { preVote: false });
    const n1 = cluster.node("n1");
    n1.campaign();
    for (let round = 0; round < 10 && n1.status().role !== "leader"; round++) {
      cluster.processReadies();
      cluster.deliverAll();
    }
    expect(n1.status().role).toBe("leader");
    expect(() => n1.proposeMembershipChange({ type: "remove", node: "n3" })).toThrow(
      expect.objectContaining({ code: "MEMBERSHIP_CHANGE_PENDING" }) as Error,
    );
    cluster.stabilize();
    expect(n1.proposeMembershipChange({ type: "remove", node: "n3" }).index).toBe(2);
  });

  it("rejects invalid changes with INVALID_MEMBERSHIP_CHANGE", () => {
    const cluster = Cluster.of(["n1", "n2"]);
    cluster.elect("n1");
    const invalid: MembershipChange[] = [
      { type: "addLearner", node: "n2", address: "x" },
      { type: "promote", node: "n2" },
      { type: "promote", node: "n9" },
      { type: "remove", node: "n9" },
    ];
    for (const membershipChange of invalid) {
      expect(() => cluster.node("n1").proposeMembershipChange(membershipChange)).toThrow(
        expect.objectContaining({ code: "INVALID_MEMBERSHIP_CHANGE" }) as Error,
      );
    }
    const solo = Cluster.of(["solo"]);
    solo.elect("solo");
    expect(() => solo.node("solo").proposeMembershipChange({ type: "remove", node: "solo" })).toThrow(
      expect.objectContaining({ code: "INVALID_MEMBERSHIP_CHANGE" }) as Error,
    );
  });

  it("takes effect on append and reverts when the entry is truncated", () => {
    const membership = membershipOf(["n1", "n2", "n3"]);
    const storage = new MemoryStorage({ membership, entries: [{ kind: "noop", index: 1, term: 1 }], hardState: { term: 1, vote: null, commit: 1 } });
    const node = new RaftNode(defaultRaftConfig({ id: "n2", storage, random: seededRandom(3) }));
    const withLearner = membershipOf(["n1", "n2", "n3"], ["n4"]);
    const append = (term: number, entries: LogEntry[]): Message => ({
      type: "appendEntries", from: term === 1 ? "n1" : "n3", to: "n2", term, prevLogIndex: 1, prevLogTerm: 1, entries, commit: 1,
    });
    node.step(append(1, [{ kind: "membership", membership: withLearner, index: 2, term: 1 }]));
    expect(node.status().membership.learners).toEqual(["n4"]);
    node.step(append(2, [{ kind: "noop", index: 2, term: 2 }]));
    expect(node.status().membership).toEqual(membership);
  });
});

describe("membership changes that keep a quorum (strict reconfiguration check)", () => {
  const unsafe = expect.objectContaining({ code: "UNSAFE_MEMBERSHIP_CHANGE" }) as Error;

  /** n1 leads n1..n3; n3 has been unreachable for longer than an election timeout. */
  function clusterWithSilentVoter(): Cluster {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.isolate("n3");
    cluster.tick(12, ["n1", "n2"]);
    return cluster;
  }

  it("refuses a removal that leaves the voters without a reachable quorum, unless forced", () => {
    const cluster = clusterWithSilentVoter();
    const leader = cluster.node("n1");
    const lastIndex = leader.status().lastIndex;
    expect(() => leader.proposeMembershipChange({ type: "remove", node: "n2" })).toThrow(unsafe);
    expect(leader.status().lastIndex).toBe(lastIndex);
    expect(leader.proposeMembershipChange({ type: "remove", node: "n2" }, { force: true }).index).toBe(lastIndex + 1);
  });

  it("allows removing the unreachable voter: the rest still hear each other", () => {
    const cluster = clusterWithSilentVoter();
    change(cluster, "n1", { type: "remove", node: "n3" });
    expect(cluster.node("n1").status().membership.voters).toEqual(["n1", "n2"]);
  });

  it("refuses any change while the leader hears from no quorum of the new voters", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.add("n4", { membership: EMPTY });
    cluster.elect("n1");
    cluster.isolate("n1");
    cluster.tick(12, ["n1"]);
    expect(() => cluster.node("n1").proposeMembershipChange({ type: "addLearner", node: "n4", address: "addr-n4" })).toThrow(unsafe);
  });

  it("counts a member as heard from for one election timeout after its last message", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"], { checkQuorum: false });
    cluster.elect("n1");
    cluster.isolate("n3");
    cluster.isolate("n2");
    cluster.tick(10, ["n1"]);
    // n2 answered ten ticks ago: still heard from; one tick later it is not.
    expect(() => cluster.node("n1").proposeMembershipChange({ type: "remove", node: "n3" })).not.toThrow();
    const fresh = Cluster.of(["n1", "n2", "n3"], { checkQuorum: false });
    fresh.elect("n1");
    fresh.isolate("n2");
    fresh.isolate("n3");
    fresh.tick(11, ["n1"]);
    expect(() => fresh.node("n1").proposeMembershipChange({ type: "remove", node: "n3" })).toThrow(unsafe);
  });

  it("promotes only a learner that holds every committed entry, unless forced", () => {
    const cluster = clusterWithNewcomer();
    cluster.isolate("n4");
    change(cluster, "n1", { type: "addLearner", node: "n4", address: "addr-n4" });
    const leader = cluster.node("n1");
    expect(leader.status().progress["n4"]?.match).toBe(0);
    expect(() => leader.proposeMembershipChange({ type: "promote", node: "n4" })).toThrow(unsafe);
    cluster.heal();
    cluster.tick(2);
    expect(leader.status().progress["n4"]?.match).toBe(leader.status().commit);
    change(cluster, "n1", { type: "promote", node: "n4" });
    expect(leader.status().membership.voters).toEqual(["n1", "n2", "n3", "n4"]);
  });

  it("force promotes a learner that is behind", () => {
    const cluster = clusterWithNewcomer();
    cluster.isolate("n4");
    change(cluster, "n1", { type: "addLearner", node: "n4", address: "addr-n4" });
    cluster.node("n1").proposeMembershipChange({ type: "promote", node: "n4" }, { force: true });
    cluster.stabilize();
    expect(cluster.node("n1").status().membership.voters).toEqual(["n1", "n2", "n3", "n4"]);
  });
});

import { describe, expect, it } from "vitest";
import { Cluster } from "./cluster.js";

describe("leader election (Raft §5.2)", () => {
  it("elects exactly one leader that every follower knows, in term 1", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    const leader = cluster.tickUntilLeader();
    cluster.tick(3);
    const statuses = ["n1", "n2", "n3"].map((id) => cluster.node(id).status());
    expect(statuses.filter((status) => status.role === "leader")).toHaveLength(1);
    expect(statuses.map((status) => status.leader)).toEqual([leader, leader, leader]);
    expect(statuses.map((status) => status.term)).toEqual([1, 1, 1]);
  });

  it("commits the new leader's no-op so that it can serve (§8)", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    const leader = cluster.elect("n2");
    expect(leader).toBe("n2");
    const status = cluster.node("n2").status();
    expect(status.commit).toBe(1);
    expect(cluster.member("n1").storage.entries(1, 2, 1024)[0]?.kind).toBe("noop");
  });

  it("a single voter elects itself at once", () => {
    const cluster = Cluster.of(["solo"]);
    expect(cluster.elect("solo")).toBe("solo");
    expect(cluster.node("solo").status().commit).toBe(1);
  });

  it("refuses a vote to a candidate whose log is behind (§5.4.1)", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.isolate("n3");
    cluster.propose("n1", "a", "b");
    cluster.heal();
    cluster.isolate("n1");
    // n3 misses the entries; n2 has them and must refuse its vote.
    cluster.node("n3").campaign();
    cluster.stabilize();
    cluster.tick(30, ["n2", "n3"]);
    expect(cluster.node("n2").status().role).toBe("leader");
    expect(cluster.node("n3").status().leader).toBe("n2");
  });

  it("keeps at most one vote per term across restarts", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"], { preVote: false });
    cluster.cut("n1", "n3");
    cluster.node("n1").campaign();
    cluster.stabilize();
    expect(cluster.member("n2").storage.initialState().hardState.vote).toBe("n1");
    cluster.member("n2").restart(7);
    cluster.heal();
    cluster.cut("n1", "n2");
    cluster.cut("n1", "n3");
    // n3 asks n2 in the same term 1: n2 remembers its vote and refuses.
    cluster.member("n3").node.campaign();
    cluster.stabilize();
    const n2Responses = cluster.deliveredOf("requestVoteResponse").filter((message) => message.from === "n2" && message.to === "n3");
    expect(n2Responses.every((message) => !message.granted || message.term > 1)).toBe(true);
  });
});

describe("pre-vote (dissertation §9.6)", () => {
  it("an isolated follower does not raise its term and does not disturb the leader on return", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    const leader = cluster.elect("n1");
    cluster.isolate("n3");
    cluster.tick(100);
    expect(cluster.node("n3").status().term).toBe(1);
    expect(cluster.node("n3").status().role).toBe("preCandidate");
    cluster.heal();
    cluster.tick(5);
    expect(cluster.leader()).toBe(leader);
    expect(cluster.node(leader).status().term).toBe(1);
    expect(cluster.node("n3").status().leader).toBe(leader);
  });

  it("without pre-vote the same isolation raises the term and deposes the leader", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"], { preVote: false, checkQuorum: false });
    cluster.elect("n1");
    cluster.isolate("n3");
    cluster.tick(100);
    expect(cluster.node("n3").status().term).toBeGreaterThan(1);
    cluster.heal();
    cluster.tick(30);
    expect(cluster.node("n1").status().term).toBeGreaterThan(1);
  });
});

describe("check-quorum and leader lease (dissertation §6.2, §4.2.3)", () => {
  it("a leader that cannot hear a quorum steps down at the end of the next check window", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.isolate("n1");
    // Followers answered in the current window; the following window finds no one.
    cluster.tick(10, ["n1"]);
    expect(cluster.node("n1").status().role).toBe("leader");
    cluster.tick(10, ["n1"]);
    expect(cluster.node("n1").status().role).toBe("follower");
    const newLeader = cluster.tickUntilLeader(200, ["n2", "n3"]);
    expect(["n2", "n3"]).toContain(newLeader);
  });

  it("followers that hear from a live leader ignore a higher-term vote request", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.deliver({ type: "requestVote", from: "n3", to: "n2", term: 9, lastLogIndex: 100, lastLogTerm: 9, preVote: false, transfer: false });
    const status = cluster.node("n2").status();
    expect(status.term).toBe(1);
    expect(status.leader).toBe("n1");
    expect(cluster.node("n2").hasReady()).toBe(false);
  });

  it("a vote request marked as a transfer bypasses the lease", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.deliver({ type: "requestVote", from: "n3", to: "n2", term: 9, lastLogIndex: 100, lastLogTerm: 9, preVote: false, transfer: true });
    expect(cluster.node("n2").status().term).toBe(9);
  });

  it("a stale leader learns the newer term from an answer to its append and steps down", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.isolate("n1");
    const newLeader = cluster.tickUntilLeader(200, ["n2", "n3"]);
    cluster.heal();
    cluster.node("n1").propose([new Uint8Array([1])]);
    cluster.stabilize();
    expect(cluster.node("n1").status().role).toBe("follower");
    expect(cluster.node("n1").status().term).toBe(cluster.node(newLeader).status().term);
    cluster.tick(1, [newLeader]);
    expect(cluster.node("n1").status().leader).toBe(newLeader);
  });
});

describe("who may campaign", () => {
  it("a learner and a node outside the membership never campaign", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    const membership = cluster.node("n1").status().membership;
    cluster.add("l1", { membership: { ...membership, learners: ["l1"] } });
    cluster.add("out", { membership });
    cluster.isolate("l1");
    cluster.isolate("out");
    cluster.tick(100, ["l1", "out"]);
    expect(cluster.node("l1").status().role).toBe("follower");
    expect(cluster.node("out").status().role).toBe("follower");
    expect(cluster.node("l1").status().term).toBe(0);
    expect(cluster.node("out").status().term).toBe(0);
  });
});

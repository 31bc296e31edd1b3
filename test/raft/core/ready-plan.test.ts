import { describe, expect, it } from "vitest";
import { planReady, type DriverHardStates } from "../../../src/raft/ready-plan.js";
import type { RaftNode } from "../../../src/raft/node.js";
import type { HardState, Message } from "../../../src/raft/types.js";
import { Cluster, command } from "./cluster.js";

/** The hard states a driver holds right after handling everything so far: what it wrote is what the core last reported. */
function settled(node: RaftNode, cluster: Cluster, id: string): DriverHardStates {
  const hardState: HardState = cluster.member(id).storage.initialState().hardState;
  expect(node.hasReady()).toBe(false);
  return { latest: hardState, written: hardState };
}

function types(messages: readonly Message[]): Message["type"][] {
  return messages.map((message) => message.type);
}

describe("the Ready plan keeps the fsync-order rules", () => {
  it("a vote leaves only with the write that makes the new term and vote durable", () => {
    // No leader yet, so no lease makes n2 ignore the request.
    const cluster = Cluster.of(["n1", "n2", "n3"], { preVote: false });
    const n2 = cluster.node("n2");
    const before = settled(n2, cluster, "n2");
    const term = n2.status().term + 1;
    n2.step({ type: "requestVote", from: "n3", to: "n2", term, lastLogIndex: n2.status().lastIndex, lastLogTerm: n2.status().term, preVote: false, transfer: false });
    const plan = planReady(n2.ready(), before);
    expect(plan.sendNow).toEqual([]);
    expect(types(plan.sendWhenDurable)).toEqual(["requestVoteResponse"]);
    expect(plan.write?.hardState).toMatchObject({ term, vote: "n3" });
  });

  it("a follower's append acknowledgement waits for the write of the entries it acknowledges", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    const n2 = cluster.node("n2");
    const before = settled(n2, cluster, "n2");
    const { term, lastIndex } = n2.status();
    const entry = { kind: "command" as const, data: command("x"), index: lastIndex + 1, term };
    n2.step({ type: "appendEntries", from: "n1", to: "n2", term, prevLogIndex: lastIndex, prevLogTerm: term, entries: [entry], commit: lastIndex });
    const plan = planReady(n2.ready(), before);
    expect(plan.sendNow).toEqual([]);
    expect(types(plan.sendWhenDurable)).toEqual(["appendEntriesResponse"]);
    expect(plan.write?.entries).toEqual([entry]);
    expect(plan.write?.persisted).toEqual({ lastEntry: { index: entry.index, term } });
  });

  it("a leader's replication leaves before its own write, which it counts only once persisted", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    const n1 = cluster.node("n1");
    const before = settled(n1, cluster, "n1");
    n1.propose([command("x")]);
    const plan = planReady(n1.ready(), before);
    expect(types(plan.sendNow)).toEqual(["appendEntries", "appendEntries"]);
    expect(plan.sendWhenDurable).toEqual([]);
    expect(plan.write?.entries.map((entry) => entry.index)).toEqual([n1.status().lastIndex]);
  });

  it("a leader that has just voted for itself sends nothing, replication included, before that vote is durable", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"], { preVote: false });
    cluster.elect("n1");
    const n2 = cluster.node("n2");
    const before = settled(n2, cluster, "n2");
    n2.campaign();
    const plan = planReady(n2.ready(), before);
    expect(plan.sendNow).toEqual([]);
    expect(types(plan.sendWhenDurable)).toEqual(["requestVote", "requestVote"]);
    expect(plan.write?.hardState).toMatchObject({ term: before.written.term + 1, vote: "n2" });
  });

  it("a commit index alone is not worth a write: it rides along with the next one", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    const n2 = cluster.node("n2");
    const { term, lastIndex } = n2.status();
    const entry = { kind: "command" as const, data: command("x"), index: lastIndex + 1, term };
    n2.step({ type: "appendEntries", from: "n1", to: "n2", term, prevLogIndex: lastIndex, prevLogTerm: term, entries: [entry], commit: lastIndex });
    cluster.member("n2").handleReady();
    const before = settled(n2, cluster, "n2");
    n2.step({ type: "heartbeat", from: "n1", to: "n2", term, commit: entry.index, readRound: 0 });
    const ready = n2.ready();
    expect(ready.hardState?.commit).toBe(entry.index);
    const plan = planReady(ready, before);
    expect(plan.write).toBeNull();
    expect(types(plan.sendWhenDurable)).toEqual(["heartbeatResponse"]);
  });
});

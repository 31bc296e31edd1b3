import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../src/raft/memory-storage.js";
import { defaultRaftConfig, RaftNode } from "../../../src/raft/node.js";
import { MAX_TERM } from "../../../src/raft/types.js";
import type { LogEntry, Message, RefusalReason, SnapshotMetadata } from "../../../src/raft/types.js";
import { Cluster, membershipOf, seededRandom } from "./cluster.js";

const membership = membershipOf(["n1", "n2", "n3"]);

/** n1 leads term 1 with three committed commands; everyone has applied them and is quiet. */
function steadyCluster(): Cluster {
  const cluster = Cluster.of(["n1", "n2", "n3"]);
  cluster.elect("n1");
  cluster.propose("n1", "a", "b", "c");
  cluster.tick(1);
  return cluster;
}

/** Steps a forged message into `node`: no throw, no change of state, no answer, one refusal. */
function expectRefused(node: RaftNode, message: Message, reason: RefusalReason): void {
  expect(node.hasReady()).toBe(false);
  const before = node.status();
  expect(() => node.step(message)).not.toThrow();
  expect(node.status()).toEqual(before);
  const ready = node.ready();
  expect(ready.messages).toEqual([]);
  expect(ready.entries).toEqual([]);
  expect(ready.hardState).toBeUndefined();
  expect(ready.refusedMessages).toEqual([{ reason, from: message.from, type: message.type, term: message.term, count: 1 }]);
  node.advance();
}

function snapshotMetadata(index: number, term: number): SnapshotMetadata {
  return { index, term, membership, sizeBytes: 4 };
}

describe("remote input that contradicts a node's own state is refused, never asserted on", () => {
  it("a leader refuses leader messages in its own term (two leaders)", () => {
    const cluster = steadyCluster();
    const leader = cluster.node("n1");
    const header = { from: "n2", to: "n1", term: 1 } as const;
    expectRefused(leader, { type: "heartbeat", ...header, commit: 4, readRound: 0 }, "two_leaders");
    expectRefused(leader, { type: "appendEntries", ...header, prevLogIndex: 4, prevLogTerm: 1, entries: [], commit: 4 }, "two_leaders");
    const chunk = { metadata: snapshotMetadata(4, 1), offset: 0, data: new Uint8Array(4), last: true };
    expectRefused(leader, { type: "installSnapshot", ...header, chunk }, "two_leaders");
    expect(leader.status().role).toBe("leader");
  });

  it("a follower refuses leader messages in its term from another node than its leader", () => {
    const cluster = steadyCluster();
    const follower = cluster.node("n2");
    const header = { from: "n3", to: "n2", term: 1 } as const;
    expectRefused(follower, { type: "heartbeat", ...header, commit: 4, readRound: 0 }, "leader_conflict");
    const forged: LogEntry = { kind: "noop", index: 5, term: 1 };
    expectRefused(follower, { type: "appendEntries", ...header, prevLogIndex: 4, prevLogTerm: 1, entries: [forged], commit: 5 }, "leader_conflict");
    const chunk = { metadata: snapshotMetadata(5000, 1), offset: 0, data: new Uint8Array(4), last: true };
    expectRefused(follower, { type: "installSnapshot", ...header, chunk }, "leader_conflict");
    expect(follower.status().leader).toBe("n1");
  });

  it("a follower refuses timeoutNow and a read index from a node that is not its leader", () => {
    const cluster = steadyCluster();
    const follower = cluster.node("n2");
    expectRefused(follower, { type: "timeoutNow", from: "n3", to: "n2", term: 1 }, "not_from_leader");
    follower.readIndex(7);
    cluster.stabilize();
    expect(cluster.member("n2").readStates).toEqual([{ index: 4, context: 7 }]);
    follower.readIndex(8);
    follower.ready();
    follower.advance();
    expectRefused(follower, { type: "readIndexResponse", from: "n3", to: "n2", term: 1, contexts: [8], index: 1 }, "not_from_leader");
  });

  it("a leader refuses acknowledgements of entries, snapshots and read rounds it never sent", () => {
    const cluster = steadyCluster();
    const leader = cluster.node("n1");
    const header = { from: "n2", to: "n1", term: 1 } as const;
    expectRefused(leader, { type: "appendEntriesResponse", ...header, success: true, matchIndex: 302 }, "match_beyond_log");
    expectRefused(leader, { type: "installSnapshotResponse", ...header, snapshotIndex: 5000, nextOffset: 0, done: true }, "snapshot_beyond_log");
    expectRefused(leader, { type: "heartbeatResponse", ...header, readRound: 99 }, "read_round_beyond_issued");
    expect(leader.status().progress["n2"]?.match).toBe(4);
  });

  it("terms beyond MAX_TERM are refused, so every node keeps a safe term + 1", () => {
    const cluster = steadyCluster();
    const follower = cluster.node("n2");
    const term = Number.MAX_SAFE_INTEGER;
    expectRefused(follower, { type: "requestVote", from: "n3", to: "n2", term, lastLogIndex: 9, lastLogTerm: 1, preVote: false, transfer: true }, "term_beyond_bound");
    expectRefused(follower, { type: "heartbeat", from: "n3", to: "n2", term: MAX_TERM + 1, commit: 0, readRound: 0 }, "term_beyond_bound");
    expectRefused(cluster.node("n1"), { type: "appendEntriesResponse", from: "n2", to: "n1", term, success: false, matchIndex: 0 }, "term_beyond_bound");
    expect(follower.status().term).toBe(1);
  });

  it("a snapshot claiming a term above its sender's is refused as malformed", () => {
    const cluster = steadyCluster();
    const chunk = { metadata: snapshotMetadata(50, 7), offset: 0, data: new Uint8Array(4), last: true };
    expectRefused(cluster.node("n2"), { type: "installSnapshot", from: "n1", to: "n2", term: 1, chunk }, "malformed_message");
  });

  it("many refusals between two Readies are kept bounded and still counted", () => {
    const cluster = steadyCluster();
    const leader = cluster.node("n1");
    for (let round = 0; round < 1000; round++) leader.step({ type: "heartbeat", from: "n2", to: "n1", term: 1, commit: 0, readRound: 0 });
    const { refusedMessages } = leader.ready();
    expect(refusedMessages.length).toBeLessThanOrEqual(16);
    expect(refusedMessages.reduce((sum, refusal) => sum + refusal.count, 0)).toBe(1000);
  });
});

/** n2's own log: terms [1, 1, 2, 2], committed up to 3, in term 3 following n1; nothing pending. */
function followerWithCommittedLog(): RaftNode {
  const entries: LogEntry[] = [1, 1, 2, 2].map((term, offset) => ({ kind: "noop", index: offset + 1, term }));
  const storage = new MemoryStorage({ membership, entries, hardState: { term: 3, vote: "n1", commit: 3 } });
  const node = new RaftNode(defaultRaftConfig({ id: "n2", storage, random: seededRandom(1) }));
  node.step({ type: "heartbeat", from: "n1", to: "n2", term: 3, commit: 3, readRound: 0 });
  answers(node);
  return node;
}

function append(prevLogIndex: number, prevLogTerm: number, entries: readonly LogEntry[], commit = 0): Message {
  return { type: "appendEntries", from: "n1", to: "n2", term: 3, prevLogIndex, prevLogTerm, entries, commit };
}

function answers(node: RaftNode): Message[] {
  const ready = node.ready();
  node.advance();
  return [...ready.messages];
}

describe("followers acknowledge only what the leader's terms confirm (truthful answers)", () => {
  it("an append below the commit index is acknowledged up to what it verifies, not up to the commit index", () => {
    const node = followerWithCommittedLog();
    node.step(append(1, 1, []));
    expect(answers(node)).toEqual([expect.objectContaining({ type: "appendEntriesResponse", success: true, matchIndex: 1 })]);
    node.step(append(1, 1, [{ kind: "noop", index: 2, term: 1 }, { kind: "noop", index: 3, term: 2 }]));
    expect(answers(node)).toEqual([expect.objectContaining({ success: true, matchIndex: 3 })]);
  });

  it("an append that disagrees with a committed entry is refused and never acknowledged", () => {
    const node = followerWithCommittedLog();
    // Entry 3 is committed with term 2 here; a leader claiming term 3 there is not this cluster's.
    expectRefused(node, append(2, 1, [{ kind: "noop", index: 3, term: 3 }]), "committed_conflict");
    // prevLogTerm disagrees with committed entry 2.
    expectRefused(node, append(2, 2, []), "committed_conflict");
    expect(node.status().lastIndex).toBe(4);
  });

  it("above the commit index a conflicting suffix is still replaced as usual", () => {
    const node = followerWithCommittedLog();
    node.step(append(3, 2, [{ kind: "noop", index: 4, term: 3 }], 4));
    expect(answers(node)).toEqual([expect.objectContaining({ success: true, matchIndex: 4 })]);
    expect(node.status()).toMatchObject({ commit: 4, lastIndex: 4 });
  });

  it("a snapshot at or below the commit index is done only when the log holds its last entry", () => {
    const node = followerWithCommittedLog();
    const chunk = (index: number, term: number) => ({ metadata: snapshotMetadata(index, term), offset: 0, data: new Uint8Array(4), last: true });
    node.step({ type: "installSnapshot", from: "n1", to: "n2", term: 3, chunk: chunk(3, 2) });
    expect(answers(node)).toEqual([expect.objectContaining({ type: "installSnapshotResponse", snapshotIndex: 3, done: true })]);
    expectRefused(node, { type: "installSnapshot", from: "n1", to: "n2", term: 3, chunk: chunk(3, 1) }, "committed_conflict");
  });

  it("below the follower's own snapshot it points the leader at the snapshot instead of vouching blindly", () => {
    const storage = new MemoryStorage({ membership });
    storage.append([1, 1, 1, 1, 1, 1].map((term, offset): LogEntry => ({ kind: "noop", index: offset + 1, term })));
    storage.setHardState({ term: 3, vote: "n1", commit: 6 });
    storage.createSnapshot({ index: 5, term: 1, membership, sizeBytes: 0 }, new Uint8Array());
    const node = new RaftNode(defaultRaftConfig({ id: "n2", storage, random: seededRandom(1), applied: 5 }));
    node.step(append(2, 1, [{ kind: "noop", index: 3, term: 1 }]));
    expect(answers(node)).toEqual([expect.objectContaining({ success: false, matchIndex: 2, rejectHint: { index: 5, term: 1 } })]);
    // A message that reaches past the snapshot is checked from the snapshot's entry on.
    node.step(append(3, 1, [4, 5, 6].map((index): LogEntry => ({ kind: "noop", index, term: 1 }))));
    expect(answers(node)).toEqual([expect.objectContaining({ success: true, matchIndex: 6 })]);
    const chunk = { metadata: snapshotMetadata(2, 1), offset: 0, data: new Uint8Array(4), last: true };
    node.step({ type: "installSnapshot", from: "n1", to: "n2", term: 3, chunk });
    expect(answers(node)).toEqual([expect.objectContaining({ type: "installSnapshotResponse", snapshotIndex: 0, done: true })]);
  });
});

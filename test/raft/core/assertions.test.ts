import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../src/raft/memory-storage.js";
import { defaultRaftConfig, RaftNode } from "../../../src/raft/node.js";
import { RaftLog } from "../../../src/raft/raft-log.js";
import type { LogEntry, Message } from "../../../src/raft/types.js";
import { InvariantViolation } from "../../../src/util/assert.js";
import { Cluster, membershipOf, seededRandom } from "./cluster.js";

const membership = membershipOf(["n1", "n2", "n3"]);
const noops = (count: number, term = 1): LogEntry[] => Array.from({ length: count }, (_, offset) => ({ kind: "noop", index: offset + 1, term }));

function logWith(entries: LogEntry[], commit: number): RaftLog {
  return new RaftLog(new MemoryStorage({ membership, entries, hardState: { term: 1, vote: null, commit } }));
}

describe("invariant assertions crash instead of serving wrong data", () => {
  it("commit never passes the last index", () => {
    const log = logWith(noops(3), 1);
    expect(() => log.commitTo(4)).toThrow(InvariantViolation);
    log.commitTo(3);
    expect(log.committed).toBe(3);
  });

  it("commit never decreases", () => {
    const log = logWith(noops(3), 3);
    log.commitTo(1);
    expect(log.committed).toBe(3);
  });

  it("committed entries are never truncated", () => {
    const log = logWith(noops(3), 2);
    expect(() => log.append([{ kind: "noop", index: 2, term: 2 }])).toThrow(InvariantViolation);
    log.append([{ kind: "noop", index: 3, term: 2 }]);
    expect(log.term(3)).toBe(2);
  });

  it("a log never gets a gap", () => {
    const log = logWith(noops(3), 0);
    expect(() => log.append([{ kind: "noop", index: 5, term: 1 }])).toThrow(InvariantViolation);
    const storage = new MemoryStorage({ membership });
    expect(() => storage.append([{ kind: "noop", index: 2, term: 1 }])).toThrow(InvariantViolation);
  });

  it("applied never exceeds committed", () => {
    const storage = new MemoryStorage({ membership, entries: noops(3), hardState: { term: 1, vote: null, commit: 1 } });
    expect(() => new RaftNode(defaultRaftConfig({ id: "n1", storage, random: seededRandom(1), applied: 2 }))).toThrow(InvariantViolation);
  });

  it("a follower told to commit beyond its log (it lost its data) keeps its commit and still answers", () => {
    const storage = new MemoryStorage({ membership, entries: noops(2), hardState: { term: 1, vote: null, commit: 1 } });
    const node = new RaftNode(defaultRaftConfig({ id: "n2", storage, random: seededRandom(1) }));
    const heartbeat: Message = { type: "heartbeat", from: "n1", to: "n2", term: 1, commit: 5, readRound: 0 };
    node.step(heartbeat);
    expect(node.status().commit).toBe(1);
    expect(node.ready().messages).toContainEqual({ type: "heartbeatResponse", from: "n2", to: "n1", term: 1, readRound: 0 });
  });


  it("one Ready at a time: ready() twice or advance() without ready() is a driver bug", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    const node = cluster.node("n1");
    node.campaign();
    node.ready();
    expect(node.hasReady()).toBe(false);
    expect(() => node.ready()).toThrow(InvariantViolation);
    node.advance();
    expect(() => node.advance()).toThrow(InvariantViolation);
  });

  it("a vote already given in a term is never given to another candidate", () => {
    const storage = new MemoryStorage({ membership, hardState: { term: 5, vote: "n3", commit: 0 } });
    const node = new RaftNode(defaultRaftConfig({ id: "n1", storage, random: seededRandom(1) }));
    node.step({ type: "requestVote", from: "n2", to: "n1", term: 5, lastLogIndex: 9, lastLogTerm: 5, preVote: false, transfer: false });
    const ready = node.ready();
    expect(ready.hardState).toBeUndefined();
    expect(ready.messages).toEqual([expect.objectContaining({ type: "requestVoteResponse", granted: false, term: 5 })]);
    expect(node.status().term).toBe(5);
  });

  it("an AppendEntries with a gap or a term beyond the sender's is ignored", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    const n2 = cluster.node("n2");
    const before = n2.status();
    const append = (entries: LogEntry[]): Message => ({ type: "appendEntries", from: "n1", to: "n2", term: 1, prevLogIndex: 1, prevLogTerm: 1, entries, commit: 1 });
    n2.step(append([{ kind: "noop", index: 3, term: 1 }]));
    n2.step(append([{ kind: "noop", index: 2, term: 2 }]));
    expect(n2.status()).toEqual(before);
    const ready = n2.ready();
    expect(ready.messages).toEqual([]);
    expect(ready.refusedMessages.map((refusal) => refusal.reason)).toEqual(["malformed_message", "malformed_message"]);
  });

  it("stale or misaddressed messages are ignored without throwing", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.tick(1);
    const n2 = cluster.node("n2");
    const before = n2.status();
    n2.step({ type: "heartbeat", from: "n1", to: "n3", term: 1, commit: 1, readRound: 0 });
    n2.step({ type: "appendEntriesResponse", from: "n3", to: "n2", term: 1, success: true, matchIndex: 99 });
    n2.step({ type: "requestVoteResponse", from: "n3", to: "n2", term: 0, granted: true, preVote: false });
    expect(n2.status()).toEqual(before);
    expect(n2.hasReady()).toBe(false);
  });
});

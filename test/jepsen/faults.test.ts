import { describe, expect, it } from "vitest";
import { isRecovered } from "../../jepsen-lite/control.js";
import { damageOffset, flipBytes, FLIPPED_BYTES, judgeStart, newestLogFile, TAIL_MARGIN_BYTES } from "../../jepsen-lite/disk-faults.js";
import { describeMessage, forgedMessages } from "../../jepsen-lite/forged-peer.js";
import { decodeMessages, encodeMessages } from "../../src/server/peer-codec.js";
import { MAX_TERM } from "../../src/raft/types.js";
import type { NodeStatus } from "../../src/server/replicated-node.js";

function status(id: string, overrides: Partial<NodeStatus> = {}): NodeStatus {
  return {
    id, role: "follower", term: 4, leader: "n1", commit: 120, applied: 120, lastIndex: 121,
    membership: { voters: ["n1", "n2", "n3"], learners: [], addresses: {} }, progress: {},
    leaderAddress: null, fsync: "always", snapshotIndex: 0, keys: 10, memoryBytes: 0, shards: 1,
    ...overrides,
  };
}

describe("corrupt-log-tail", () => {
  it("damages the newest LevelDB log file by number, never LevelDB's own LOG", () => {
    expect(newestLogFile(["LOG", "LOG.old", "000003.log", "000012.log", "000009.log", "MANIFEST-000002", "000010.ldb"])).toBe("000012.log");
    expect(newestLogFile(["999999.log", "1000001.log"])).toBe("1000001.log");
    expect(newestLogFile(["LOG", "CURRENT"])).toBeNull();
  });

  it("flips bytes that end a few bytes before the end of the file, or none in a file too short", () => {
    expect(damageOffset(1000)).toBe(1000 - TAIL_MARGIN_BYTES - FLIPPED_BYTES);
    expect(damageOffset(FLIPPED_BYTES + TAIL_MARGIN_BYTES)).toBe(0);
    expect(damageOffset(FLIPPED_BYTES + TAIL_MARGIN_BYTES - 1)).toBeNull();
    expect(damageOffset(0)).toBeNull();
  });

  it("changes every flipped byte", () => {
    const original = Uint8Array.of(0x00, 0xff, 0x5a, 0x01);
    const flipped = flipBytes(original);
    expect([...flipped]).toEqual([0xff, 0x00, 0xa5, 0xfe]);
    flipped.forEach((byte, index) => expect(byte).not.toBe(original[index]));
  });

  const damage = { file: "/run/cluster/n2/log/000012.log", offset: 4000 };

  it("accepts only a start that exits naming the damaged file", () => {
    const refusal = judgeStart("n2", damage, { exited: true, exitCode: 2 }, '{"msg":"LevelDB log /run/cluster/n2/log/000012.log is damaged at byte 4000"}\n');
    expect(refusal.anomaly).toBeUndefined();
    expect(refusal.summary).toContain("000012.log");
  });

  it("reports a node that serves, hangs, or exits without naming the file", () => {
    expect(judgeStart("n2", damage, { exited: false, serving: true }, "").anomaly?.kind).toBe("damaged-log-accepted");
    expect(judgeStart("n2", damage, { exited: false, serving: false }, "").anomaly?.kind).toBe("damaged-log-accepted");
    const unnamed = judgeStart("n2", damage, { exited: true, exitCode: 1 }, "error: something\n");
    expect(unnamed.anomaly).toMatchObject({ kind: "damaged-log-unnamed", message: expect.stringContaining("something") });
  });
});

describe("forged-peer messages", () => {
  const leader = status("n1", { role: "leader", term: 7 });

  it("forge, for a follower, a huge and a next-term vote, then an append, a snapshot and a heartbeat from the leader in its term", () => {
    const messages = forgedMessages(status("n2~1a2b3c4d", { term: 7, lastIndex: 300, commit: 299 }), leader, 1_000);
    expect(messages.map((message) => [message.type, message.from, message.to, message.term])).toEqual([
      ["requestVote", "n1", "n2~1a2b3c4d", MAX_TERM],
      ["requestVote", "n1", "n2~1a2b3c4d", 8],
      ["appendEntries", "n1", "n2~1a2b3c4d", 7],
      ["installSnapshot", "n1", "n2~1a2b3c4d", 7],
      ["heartbeat", "n1", "n2~1a2b3c4d", 7],
    ]);
    const append = messages[2];
    expect(append?.type === "appendEntries" && [append.prevLogIndex, append.entries.map((entry) => entry.index), append.commit]).toEqual([300, [301], 301]);
    const snapshot = messages[3];
    expect(snapshot?.type === "installSnapshot" && snapshot.chunk.metadata.index).toBe(5000);
  });

  it("claim, to the leader, to come from another voter", () => {
    const messages = forgedMessages(leader, leader, 1_000);
    expect(new Set(messages.map((message) => message.from))).toEqual(new Set(["n2"]));
    expect(messages.every((message) => message.to === "n1")).toBe(true);
  });

  it("are well-formed for the product's peer codec: the node must refuse them for their link, not their shape", () => {
    const messages = forgedMessages(status("n3"), leader, 1_000);
    expect(decodeMessages(encodeMessages(messages)).map((message) => message.type)).toEqual(messages.map((message) => message.type));
  });

  it("are described with their term", () => {
    const [huge, next] = forgedMessages(status("n3"), leader, 1_000);
    expect(huge && describeMessage(huge)).toBe("requestVote from n1 in term 2^40 (the bound)");
    expect(next && describeMessage(next)).toBe("requestVote from n1 in term 8");
  });
});

describe("isRecovered", () => {
  const voters = ["n1", "n2~1a2b3c4d", "n3"];
  const membership = { voters, learners: [], addresses: {} };
  const healthy = (): Map<string, NodeStatus> =>
    new Map([
      ["n1", status("n1", { role: "leader", membership })],
      ["n2", status("n2~1a2b3c4d", { membership })],
      ["n3", status("n3", { membership })],
    ]);

  it("holds when one leader leads every node, caught up, and its voters are the nodes' current ids", () => {
    expect(isRecovered(healthy(), 3)).toBe(true);
  });

  it("fails while an earlier incarnation is still a voter, or the new one only a learner", () => {
    const stale = healthy();
    stale.set("n1", status("n1", { role: "leader", membership: { voters: ["n1", "n2", "n3"], learners: [], addresses: {} } }));
    expect(isRecovered(stale, 3)).toBe(false);
    const learner = healthy();
    learner.set("n1", status("n1", { role: "leader", membership: { voters: ["n1", "n3"], learners: ["n2~1a2b3c4d"], addresses: {} } }));
    expect(isRecovered(learner, 3)).toBe(false);
  });

  it("fails while a node is behind the leader's commit, follows another leader, or does not answer", () => {
    const behind = healthy();
    behind.set("n3", status("n3", { membership, applied: 119 }));
    expect(isRecovered(behind, 3)).toBe(false);
    const elsewhere = healthy();
    elsewhere.set("n3", status("n3", { membership, leader: "n3", term: 5 }));
    expect(isRecovered(elsewhere, 3)).toBe(false);
    const silent = healthy();
    silent.delete("n3");
    expect(isRecovered(silent, 3)).toBe(false);
  });
});

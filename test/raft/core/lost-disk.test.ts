import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../src/raft/memory-storage.js";
import { defaultRaftConfig, RaftNode } from "../../../src/raft/node.js";
import type { Membership } from "../../../src/raft/types.js";

const membership: Membership = { voters: ["n1", "n2", "n3"], learners: [], addresses: { n1: "a:1", n2: "a:2", n3: "a:3" } };

describe("a follower that lost its data directory", () => {
  it("ignores a heartbeat commit beyond its log instead of crashing, and still answers", () => {
    // The leader remembers this node's old match index: its heartbeat carries commit 5.
    const node = new RaftNode(defaultRaftConfig({ id: "n1", storage: new MemoryStorage({ membership }), random: () => 0.5 }));
    node.step({ type: "heartbeat", from: "n3", to: "n1", term: 4, commit: 5, readRound: 0 });
    const ready = node.ready();
    expect(node.status()).toMatchObject({ role: "follower", term: 4, leader: "n3", commit: 0 });
    expect(ready.messages).toContainEqual({ type: "heartbeatResponse", from: "n1", to: "n3", term: 4, readRound: 0 });
    node.advance();
  });
});

import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../src/raft/memory-storage.js";
import { defaultRaftConfig, RaftNode } from "../../../src/raft/node.js";
import type { LogEntry, Message } from "../../../src/raft/types.js";
import { Cluster, command, membershipOf, seededRandom } from "./cluster.js";

const CHUNK_BYTES = 16;

/** n3 misses 20 entries while the leader compacts them away: it can only catch up by snapshot. */
function laggingCluster(): Cluster {
  const cluster = Cluster.of(["n1", "n2", "n3"], { maxSnapshotChunkBytes: CHUNK_BYTES });
  cluster.elect("n1");
  cluster.isolate("n3");
  for (let index = 0; index < 20; index++) cluster.propose("n1", `value-${index}`);
  cluster.tick(1, ["n1", "n2"]);
  cluster.member("n1").compact();
  return cluster;
}

describe("log compaction and InstallSnapshot in chunks", () => {
  it("catches a lagging follower up with a snapshot streamed in several chunks, then with appends", () => {
    const cluster = laggingCluster();
    expect(cluster.member("n1").storage.firstIndex()).toBe(22);
    cluster.heal();
    cluster.tick(3);
    const chunks = cluster.deliveredOf("installSnapshot").map((message) => message.chunk);
    const size = cluster.member("n1").storage.snapshotMetadata().sizeBytes;
    expect(chunks.length).toBe(Math.ceil(size / CHUNK_BYTES));
    expect(chunks.map((chunk) => chunk.offset)).toEqual(chunks.map((_, position) => position * CHUNK_BYTES));
    expect(chunks.every((chunk) => chunk.data.byteLength <= CHUNK_BYTES)).toBe(true);
    expect(cluster.member("n3").storage.snapshotMetadata().index).toBe(21);
    expect(cluster.member("n3").applied).toEqual(cluster.member("n1").applied);
    cluster.propose("n1", "after");
    expect(cluster.member("n3").applied.at(-1)).toBe("after");
    expect(cluster.node("n1").status().progress["n3"]?.state).toBe("replicate");
  });

  it("resends a lost chunk after an election timeout and resumes where the follower stands", () => {
    const cluster = laggingCluster();
    let dropped = false;
    cluster.dropWhen = (message) => {
      if (dropped || message.type !== "installSnapshot" || message.chunk.offset !== CHUNK_BYTES) return false;
      dropped = true;
      return true;
    };
    cluster.heal();
    cluster.tick(15);
    expect(dropped).toBe(true);
    const offsets = cluster.deliveredOf("installSnapshot").map((message) => message.chunk.offset);
    expect(offsets.filter((offset) => offset === 0)).toHaveLength(1);
    expect(cluster.member("n3").applied).toEqual(cluster.member("n1").applied);
  });

  it("restarts at offset 0 with the new snapshot when the leader compacts again during a transfer", () => {
    const cluster = laggingCluster();
    // Let only the first chunk through, then compact the leader further while n3 is away again.
    cluster.dropWhen = (message) => message.type === "installSnapshot" && message.chunk.offset > 0;
    cluster.heal();
    cluster.tick(1);
    cluster.isolate("n3");
    cluster.dropWhen = () => false;
    cluster.propose("n1", "more");
    cluster.tick(1, ["n1", "n2"]);
    cluster.member("n1").compact();
    expect(cluster.member("n1").storage.snapshotMetadata().index).toBe(22);
    cluster.heal();
    cluster.tick(12);
    const chunks = cluster.deliveredOf("installSnapshot").map((message) => message.chunk);
    expect(chunks.filter((chunk) => chunk.metadata.index === 21).map((chunk) => chunk.offset)).toEqual([0]);
    expect(chunks.find((chunk) => chunk.metadata.index === 22)?.offset).toBe(0);
    expect(cluster.member("n3").storage.snapshotMetadata().index).toBe(22);
    expect(cluster.member("n3").applied).toEqual(cluster.member("n1").applied);
  });

  it("restarts at offset 0 when the follower lost its partial snapshot in a crash", () => {
    const cluster = laggingCluster();
    let crashed = false;
    cluster.dropWhen = (message) => {
      if (!crashed && message.type === "installSnapshot" && message.chunk.offset === 2 * CHUNK_BYTES) {
        crashed = true;
        cluster.member("n3").restart(99);
      }
      return false;
    };
    cluster.heal();
    cluster.tick(5);
    expect(crashed).toBe(true);
    const restarts = cluster.deliveredOf("installSnapshotResponse").filter((message) => !message.done && message.nextOffset === 0);
    expect(restarts.length).toBeGreaterThan(0);
    expect(cluster.member("n3").applied).toEqual(cluster.member("n1").applied);
  });
});

describe("receiving a snapshot", () => {
  const membership = membershipOf(["leader", "follower"]);
  const entries: LogEntry[] = [1, 2, 3, 4, 5].map((index) => ({ kind: "noop", index, term: 1 }));

  function follower(): { node: RaftNode; storage: MemoryStorage } {
    const storage = new MemoryStorage({ membership, entries, hardState: { term: 1, vote: null, commit: 2 } });
    return { node: new RaftNode(defaultRaftConfig({ id: "follower", storage, random: seededRandom(1) })), storage };
  }

  function chunk(index: number, term: number, messageTerm: number): Message {
    const data = command("abc");
    const metadata = { index, term, membership, sizeBytes: data.byteLength };
    return { type: "installSnapshot", from: "leader", to: "follower", term: messageTerm, chunk: { metadata, offset: 0, data, last: true } };
  }

  it("keeps the log suffix when it already holds the snapshot's last entry", () => {
    const { node, storage } = follower();
    node.step(chunk(4, 1, 1));
    const ready = node.ready();
    expect(ready.snapshot?.index).toBe(4);
    expect(ready.snapshotChunks).toHaveLength(1);
    expect(ready.messages).toEqual([expect.objectContaining({ type: "installSnapshotResponse", done: true, snapshotIndex: 4 })]);
    if (ready.snapshot === undefined) throw new Error("expected a snapshot");
    storage.applySnapshot(ready.snapshot, command("abc"));
    node.advance();
    expect(node.status()).toMatchObject({ lastIndex: 5, commit: 4, applied: 4 });
    expect(storage.lastIndex()).toBe(5);
    expect(storage.firstIndex()).toBe(5);
  });

  it("replaces the whole log when it does not match", () => {
    const { node, storage } = follower();
    node.step(chunk(4, 2, 2));
    const ready = node.ready();
    if (ready.snapshot === undefined) throw new Error("expected a snapshot");
    storage.applySnapshot(ready.snapshot, command("abc"));
    node.advance();
    expect(node.status()).toMatchObject({ lastIndex: 4, commit: 4, applied: 4 });
    expect(storage.lastIndex()).toBe(4);
  });

  it("answers a snapshot it already covers with its commit index, without installing it", () => {
    const { node } = follower();
    node.step(chunk(2, 1, 1));
    const ready = node.ready();
    expect(ready.snapshot).toBeUndefined();
    expect(ready.messages).toEqual([expect.objectContaining({ done: true, snapshotIndex: 2 })]);
  });
});

import { describe, expect, it } from "vitest";
import { RaftError } from "../../../src/raft/types.js";
import type { LogEntry, Message } from "../../../src/raft/types.js";
import { Cluster, command, membershipOf } from "./cluster.js";

function entriesOf(terms: readonly number[], firstIndex = 1): LogEntry[] {
  return terms.map((term, offset) => ({ kind: "command", data: command(`t${term}-${firstIndex + offset}`), index: firstIndex + offset, term }));
}

function termsOf(cluster: Cluster, id: string): number[] {
  const storage = cluster.member(id).storage;
  return storage.entries(1, storage.lastIndex() + 1, Number.POSITIVE_INFINITY).map((entry) => entry.term);
}

describe("log replication (Raft §5.3)", () => {
  it("replicates proposals and applies them in the same order everywhere", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    const leader = cluster.elect("n1");
    cluster.propose(leader, "a", "b");
    cluster.propose(leader, "c");
    cluster.tick(2);
    for (const id of ["n1", "n2", "n3"]) {
      expect(cluster.member(id).applied).toEqual(["a", "b", "c"]);
      expect(cluster.node(id).status().commit).toBe(4);
    }
  });

  it("a follower refuses proposals with NOT_LEADER and a leader hint", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    const attempt = (): unknown => cluster.node("n2").propose([command("x")]);
    expect(attempt).toThrow(RaftError);
    try {
      attempt();
    } catch (error) {
      expect(error).toMatchObject({ code: "NOT_LEADER", leader: "n1" });
    }
  });

  it("repairs a long divergent follower log with few rejections (conflict-term backtracking)", () => {
    const membership = membershipOf(["n1", "n2", "n3"]);
    const hardState = { term: 5, vote: null, commit: 3 };
    const leaderLog = entriesOf([1, 1, 1, 4, 4, 4]);
    const divergent = [...entriesOf([1, 1, 1]), ...entriesOf(Array<number>(40).fill(2), 4)];
    const cluster = new Cluster(
      {
        n1: { membership, hardState, entries: leaderLog },
        n2: { membership, hardState, entries: divergent },
        n3: { membership, hardState, entries: leaderLog },
      },
      { preVote: false },
    );
    cluster.elect("n1");
    cluster.tick(2);
    expect(termsOf(cluster, "n2")).toEqual(termsOf(cluster, "n1"));
    expect(termsOf(cluster, "n1")).toEqual([1, 1, 1, 4, 4, 4, 6]);
    const rejections = cluster.deliveredOf("appendEntriesResponse").filter((message) => message.from === "n2" && !message.success);
    expect(rejections.length).toBeGreaterThan(0);
    expect(rejections.length).toBeLessThanOrEqual(2);
  });

  it("backtracks a follower whose log is longer but of an older term (Figure 7 f)", () => {
    const membership = membershipOf(["n1", "n2", "n3"]);
    const hardState = { term: 3, vote: null, commit: 3 };
    const cluster = new Cluster(
      {
        n1: { membership, hardState, entries: entriesOf([1, 1, 1, 3, 3]) },
        n2: { membership, hardState, entries: entriesOf([1, 1, 1, 2, 2, 2, 2, 2, 2, 2]) },
        n3: { membership, hardState, entries: entriesOf([1, 1, 1, 3, 3]) },
      },
      { preVote: false },
    );
    cluster.elect("n1");
    cluster.tick(2);
    expect(termsOf(cluster, "n2")).toEqual([1, 1, 1, 3, 3, 4]);
    expect(cluster.member("n2").applied).toEqual(cluster.member("n1").applied);
  });
});

describe("commit rule (Raft §5.4.2, Figure 8)", () => {
  it("an entry of an earlier term on a majority does not commit until one of the current term does", () => {
    const membership = membershipOf(["n1", "n2", "n3"]);
    const hardState = { term: 2, vote: null, commit: 1 };
    const cluster = new Cluster(
      {
        n1: { membership, hardState, entries: entriesOf([1, 2]) },
        n2: { membership, hardState, entries: entriesOf([1, 2]) },
        n3: { membership, hardState, entries: entriesOf([1]) },
      },
      { preVote: false },
    );
    const n1 = cluster.node("n1");
    n1.campaign();
    const votes = cluster.member("n1").handleReady().filter((message) => message.to === "n2");
    votes.forEach((message) => cluster.node("n2").step(message));
    cluster.member("n2").handleReady().forEach((message) => n1.step(message));
    expect(n1.status().role).toBe("leader");
    cluster.member("n1").handleReady(); // persists the no-op at index 3: the leader's own match is 3
    const ack = (matchIndex: number): Message => ({ type: "appendEntriesResponse", from: "n2", to: "n1", term: 3, success: true, matchIndex });
    n1.step(ack(2));
    expect(n1.status().commit).toBe(1);
    n1.step(ack(3));
    expect(n1.status().commit).toBe(3);
  });

  it("the leader counts its own entries only once persisted() says they are durable", () => {
    const cluster = Cluster.of(["solo"]);
    cluster.elect("solo");
    const solo = cluster.node("solo");
    solo.propose([command("x")]);
    const ready = solo.ready();
    expect(ready.entries.map((entry) => entry.index)).toEqual([2]);
    expect(ready.committedEntries).toEqual([]);
    solo.advance();
    expect(solo.status().commit).toBe(1);
    cluster.member("solo").storage.append(ready.entries);
    solo.persisted({ lastEntry: { index: 2, term: ready.entries[0]?.term ?? 0 } });
    expect(solo.status().commit).toBe(2);
    expect(solo.ready().committedEntries.map((entry) => entry.index)).toEqual([2]);
  });

  it("with writes in flight the next Ready hands out only new entries, and each write commits what it covers", () => {
    const cluster = Cluster.of(["solo"]);
    cluster.elect("solo");
    const solo = cluster.node("solo");
    solo.propose([command("a")]);
    const first = solo.ready();
    solo.advance();
    solo.propose([command("b"), command("c")]);
    expect(solo.hasReady()).toBe(true);
    const second = solo.ready();
    solo.advance();
    expect(first.entries.map((entry) => entry.index)).toEqual([2]);
    expect(second.entries.map((entry) => entry.index)).toEqual([3, 4]);
    const term = solo.status().term;
    const storage = cluster.member("solo").storage;
    storage.append(first.entries);
    solo.persisted({ lastEntry: { index: 2, term } });
    expect(solo.status().commit).toBe(2);
    expect(solo.ready().committedEntries.map((entry) => entry.index)).toEqual([2]);
    solo.advance();
    storage.append(second.entries);
    solo.persisted({ lastEntry: { index: 4, term } });
    expect(solo.status().commit).toBe(4);
    expect(solo.ready().committedEntries.map((entry) => entry.index)).toEqual([3, 4]);
  });

  it("a follower applies an entry it learned is committed only once its own copy is durable", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    const n2 = cluster.node("n2");
    const term = n2.status().term;
    const lastIndex = n2.status().lastIndex;
    const entry = { kind: "command" as const, data: command("x"), index: lastIndex + 1, term };
    n2.step({ type: "appendEntries", from: "n1", to: "n2", term, prevLogIndex: lastIndex, prevLogTerm: term, entries: [entry], commit: lastIndex + 1 });
    const ready = n2.ready();
    expect(ready.entries).toEqual([entry]);
    expect(ready.committedEntries).toEqual([]);
    n2.advance();
    expect(n2.hasReady()).toBe(false);
    cluster.member("n2").storage.append(ready.entries);
    n2.persisted({ lastEntry: { index: entry.index, term } });
    expect(n2.ready().committedEntries).toEqual([entry]);
  });
});

describe("batching, pipelining and flow control", () => {
  const payload = (index: number): string => `command-${String(index).padStart(40, "0")}`;

  it("pipelines bounded batches up to the in-flight window without waiting for answers", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"], { maxEntriesBytesPerMessage: 200, maxInflightMessages: 4 });
    cluster.elect("n1");
    cluster.propose("n1", "warm-up"); // followers move from probe to replicate
    const n1 = cluster.node("n1");
    n1.propose(Array.from({ length: 50 }, (_, index) => command(payload(index))));
    const appends = cluster.member("n1").handleReady().filter((message) => message.type === "appendEntries" && message.to === "n2");
    expect(appends).toHaveLength(4);
    for (const message of appends) {
      if (message.type !== "appendEntries") continue;
      const bytes = message.entries.reduce((sum, entry) => sum + (entry.kind === "command" ? entry.data.byteLength + 24 : 24), 0);
      expect(message.entries.length).toBeGreaterThan(1);
      expect(bytes).toBeLessThanOrEqual(200);
    }
    cluster.stabilize();
    cluster.tick(2);
    expect(cluster.member("n2").applied).toHaveLength(51);
    expect(cluster.member("n3").applied).toEqual(cluster.member("n1").applied);
  });

  it("sends every proposal made since the last Ready in one AppendEntries per follower", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.propose("n1", "warm-up");
    for (const text of ["a", "b", "c", "d"]) cluster.node("n1").propose([command(text)]);
    const appends = cluster.member("n1").handleReady().filter((message) => message.type === "appendEntries");
    expect(appends.map((message) => (message.type === "appendEntries" ? [message.to, message.entries.length] : []))).toEqual([
      ["n2", 4],
      ["n3", 4],
    ]);
  });

  it("bounds the in-flight window by bytes as well", () => {
    const cluster = Cluster.of(["n1", "n2"], { maxEntriesBytesPerMessage: 100, maxInflightMessages: 100, maxInflightBytes: 250 });
    cluster.elect("n1");
    cluster.propose("n1", "warm-up");
    for (let index = 0; index < 20; index++) cluster.node("n1").propose([command(payload(index))]);
    const appends = cluster.member("n1").handleReady().filter((message) => message.type === "appendEntries");
    // Each message carries one 64-byte entry: the window closes once 250 bytes are out.
    expect(appends).toHaveLength(4);
  });

  it("a probing leader sends one append at a time to a follower whose state is unknown", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    const toN3: Message[] = [];
    cluster.dropWhen = (message) => message.to === "n3" && toN3.push(message) > 0;
    cluster.elect("n1");
    for (const text of ["a", "b", "c"]) cluster.propose("n1", text);
    expect(cluster.node("n1").status().progress["n3"]?.state).toBe("probe");
    expect(cluster.node("n1").status().commit).toBe(4);
    // Only the first probe (the no-op) went out; the rest waits for an answer or a heartbeat answer.
    expect(toN3.filter((message) => message.type === "appendEntries")).toHaveLength(1);
  });

  it("heartbeats carry min(match, commit) so a lagging follower never commits what it lacks", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.dropWhen = (message) => message.type === "appendEntries" && message.to === "n3";
    cluster.propose("n1", "a", "b");
    cluster.tick(1, ["n1"]);
    const heartbeat = cluster.deliveredOf("heartbeat").filter((message) => message.to === "n3").at(-1);
    expect(cluster.node("n1").status().commit).toBe(3);
    expect(heartbeat?.commit).toBe(1);
    expect(cluster.node("n3").status().commit).toBe(1);
    cluster.dropWhen = () => false;
    cluster.tick(2, ["n1"]);
    expect(cluster.member("n3").applied).toEqual(["a", "b"]);
  });
});

describe("uncommitted bound", () => {
  it("refuses proposals with BUSY past maxUncommittedEntriesBytes and accepts again once they commit", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"], { maxUncommittedEntriesBytes: 200 });
    cluster.elect("n1");
    cluster.isolate("n1");
    const n1 = cluster.node("n1");
    n1.propose([command("x".repeat(50))]);
    n1.propose([command("x".repeat(50))]);
    expect(() => n1.propose([command("x".repeat(50))])).toThrow(expect.objectContaining({ code: "BUSY" }) as Error);
    cluster.heal();
    cluster.stabilize();
    cluster.tick(1, ["n1"]);
    expect(n1.status().commit).toBe(3);
    expect(() => n1.propose([command("x".repeat(50))])).not.toThrow();
  });

  it("always admits one proposal into an empty budget, however large", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"], { maxUncommittedEntriesBytes: 100 });
    cluster.elect("n1");
    expect(cluster.node("n1").propose([command("y".repeat(500))]).firstIndex).toBe(2);
  });
});

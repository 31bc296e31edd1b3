import { describe, expect, it } from "vitest";
import type { HardState, LogEntry, Membership, NodeId } from "../../src/raft/types.js";
import { DEFAULT_CLUSTER_CONFIG, SimulatedCluster, type ClusterConfig, type NodeSetup, type SimulatedNode } from "./cluster.js";
import { Random } from "./random.js";
import { encodeWrite } from "./register-machine.js";

/** Generous bounds in simulated time (a base election timeout is 100 ms). */
const ELECTION_BOUND_MS = 2_000;
const COMMIT_BOUND_MS = 2_000;

function membershipOf(ids: readonly NodeId[]): Membership {
  return { voters: ids, learners: [], addresses: Object.fromEntries(ids.map((id) => [id, `sim://${id}`])) };
}

function idsOf(count: number): NodeId[] {
  return Array.from({ length: count }, (_, index) => `n${index + 1}`);
}

function startCluster(count: number, seed: number, config: Partial<ClusterConfig> = {}, setups?: readonly NodeSetup[]): SimulatedCluster {
  const ids = idsOf(count);
  return new SimulatedCluster({ ...DEFAULT_CLUSTER_CONFIG, ...config }, new Random(seed), membershipOf(ids), setups ?? ids.map((id) => ({ id })));
}

function awaitLeader(cluster: SimulatedCluster, condition: (leader: SimulatedNode) => boolean = () => true): SimulatedNode {
  expect(cluster.runUntil(() => { const leader = cluster.leader(); return leader !== undefined && condition(leader); }, ELECTION_BOUND_MS)).toBe(true);
  const leader = cluster.leader();
  if (leader === undefined) throw new Error("unreachable: runUntil saw a leader");
  return leader;
}

/** Writes `key` through `node` and waits for the acknowledgement; returns the operation id. */
function writeAcknowledged(cluster: SimulatedCluster, node: SimulatedNode, key: string): number {
  const operationId = cluster.write(node.id, key);
  expect(operationId).not.toBeNull();
  expect(cluster.runUntil(() => cluster.isAcknowledged(operationId ?? 0), COMMIT_BOUND_MS)).toBe(true);
  return operationId ?? 0;
}

function command(index: number, term: number): LogEntry {
  return { index, term, kind: "command", data: encodeWrite({ key: "figure8", operationId: 1_000 + index * 10 + term }) };
}

describe("scripted scenarios", () => {
  it("Figure 8: an entry of an earlier term is not committed by counting replicas, and is later overwritten safely", () => {
    // State (b)->(c) of Figure 8 in the Raft paper, five servers: n1 led term 2 and holds 2@2 alone;
    // n5 led term 3 and holds 2@3 alone, then crashed. n1 will lead term 4 and copy 2@2 to a majority.
    const ids = idsOf(5);
    const membership = membershipOf(ids);
    const disk = (entries: LogEntry[], hardState: HardState, up = true): Omit<NodeSetup, "id"> => ({ initial: { membership, hardState, entries }, up });
    const setups: NodeSetup[] = [
      { id: "n1", ...disk([command(1, 1), command(2, 2)], { term: 3, vote: null, commit: 1 }) },
      { id: "n2", ...disk([command(1, 1)], { term: 3, vote: "n5", commit: 1 }) },
      { id: "n3", ...disk([command(1, 1)], { term: 3, vote: "n5", commit: 1 }) },
      { id: "n4", ...disk([command(1, 1)], { term: 3, vote: "n5", commit: 1 }) },
      { id: "n5", ...disk([command(1, 1), command(2, 3)], { term: 3, vote: "n5", commit: 1 }, false) },
    ];
    // One entry per AppendEntries, so that 2@2 and n1's term-4 no-op travel separately; the no-op never arrives.
    const cluster = startCluster(5, 8, { maxEntriesBytesPerMessage: 1 }, setups);
    // The network loses exactly the AppendEntries that would get the term-4 no-op accepted; probes that a follower rejects still arrive.
    cluster.network.setFilter((message) => {
      if (message.type !== "appendEntries" || !message.entries.some((entry) => entry.term === 4)) return "deliver";
      const accepted = cluster.node(message.to).storage.term(message.prevLogIndex) === message.prevLogTerm;
      return accepted ? "drop" : "deliver";
    });
    cluster.campaign("n1");
    const n1 = awaitLeader(cluster, (leader) => leader.id === "n1");
    expect(n1.term).toBe(4);
    const replicatedOnMajority = cluster.runUntil(() => Object.values(n1.status().progress).filter((progress) => progress.match >= 2).length >= 3, COMMIT_BOUND_MS);
    expect(replicatedOnMajority).toBe(true);
    cluster.runFor(500);
    expect(n1.status().commit).toBe(1);
    expect(cluster.checker.committedIndex).toBe(1);

    // n1 crashes before its no-op spreads. n5 (last entry 2@3) can win; n2..n4 cannot elect one of
    // themselves because they cannot reach each other, so the scenario does not depend on timing.
    cluster.crash("n1");
    cluster.network.setFilter(null);
    cluster.network.partition([["n2"], ["n3"], ["n4"]]);
    cluster.restart("n5");
    const n5 = awaitLeader(cluster, (leader) => leader.id === "n5");
    expect(n5.term).toBeGreaterThan(4);
    expect(cluster.runUntil(() => ["n2", "n3", "n4", "n5"].every((id) => cluster.node(id).machine.appliedIndex >= 3), COMMIT_BOUND_MS)).toBe(true);
    for (const id of ["n2", "n3", "n4", "n5"]) expect(cluster.node(id).storage.term(2)).toBe(3);

    // The old leader comes back and its uncommitted 2@2 is replaced by the committed 2@3.
    cluster.network.heal();
    cluster.restart("n1");
    expect(cluster.runUntil(() => cluster.node("n1").machine.appliedIndex >= 3, COMMIT_BOUND_MS)).toBe(true);
    expect(cluster.node("n1").storage.term(2)).toBe(3);
    expect(cluster.checker.committedDigest(2)?.startsWith("3/")).toBe(true);
    cluster.checkLogMatching();
  });

  it("a partitioned old leader neither commits nor serves linearizable reads", () => {
    const cluster = startCluster(5, 21);
    const oldLeader = awaitLeader(cluster);
    writeAcknowledged(cluster, oldLeader, "k");
    const others = [...cluster.nodes.keys()].filter((id) => id !== oldLeader.id);
    const companion = others[0] ?? "";
    cluster.network.partition([[oldLeader.id, companion], others.slice(1)]);
    const commitAtPartition = oldLeader.status().commit;
    const servedBefore = cluster.history.servedReads;

    const staleWrite = cluster.write(oldLeader.id, "k");
    expect(staleWrite).not.toBeNull();
    cluster.read(oldLeader.id, "k");
    const newLeader = awaitLeader(cluster, (leader) => leader.term > oldLeader.term && leader.id !== oldLeader.id);
    writeAcknowledged(cluster, newLeader, "k");
    cluster.read(oldLeader.id, "k");
    cluster.read(companion, "k");
    cluster.runFor(1_000);

    expect(oldLeader.status().commit).toBe(commitAtPartition);
    expect(cluster.node(companion).status().commit).toBeLessThanOrEqual(commitAtPartition);
    expect(cluster.isAcknowledged(staleWrite ?? 0)).toBe(false);
    expect(cluster.history.servedReads).toBe(servedBefore);

    // After healing, the stale write is gone and a read through the old leader sees the new one.
    cluster.network.heal();
    expect(cluster.runUntil(() => oldLeader.machine.appliedIndex >= newLeader.status().commit, COMMIT_BOUND_MS)).toBe(true);
    const readId = cluster.read(oldLeader.id, "k");
    expect(readId).not.toBeNull();
    expect(cluster.runUntil(() => cluster.history.servedReads > servedBefore, COMMIT_BOUND_MS)).toBe(true);
    expect(cluster.isAcknowledged(staleWrite ?? 0)).toBe(false);
  });

  it("a flapping follower does not disrupt a stable leader (pre-vote)", () => {
    const cluster = startCluster(3, 34);
    const leader = awaitLeader(cluster);
    const term = leader.term;
    const flapping = [...cluster.nodes.keys()].find((id) => id !== leader.id) ?? "";
    for (let round = 0; round < 6; round++) {
      // Cut off for several election timeouts: without pre-vote it would come back with a higher term.
      cluster.network.isolate(flapping, [...cluster.nodes.keys()]);
      cluster.runFor(600);
      cluster.network.heal();
      writeAcknowledged(cluster, leader, `round${round}`);
      cluster.runFor(100);
      expect(cluster.leader()?.id).toBe(leader.id);
      expect(leader.term).toBe(term);
      expect(cluster.node(flapping).term).toBe(term);
    }
  });

  it("a leader cut off from the majority steps down by itself (check-quorum)", () => {
    const cluster = startCluster(3, 55);
    const leader = awaitLeader(cluster);
    const isolatedTerm = leader.term;
    cluster.network.isolate(leader.id, [...cluster.nodes.keys()]);
    // Check-quorum steps down after one election timeout without hearing from a majority; nothing reaches it meanwhile.
    expect(cluster.runUntil(() => leader.role !== "leader", 4 * DEFAULT_CLUSTER_CONFIG.electionTimeoutTicks * DEFAULT_CLUSTER_CONFIG.tickIntervalMs)).toBe(true);
    expect(leader.up).toBe(true);
    const successor = awaitLeader(cluster, (node) => node.id !== leader.id);
    expect(successor.term).toBeGreaterThan(isolatedTerm);
    writeAcknowledged(cluster, successor, "after");
  });

  it("the leader can remove itself; the others elect a leader and carry on", () => {
    const cluster = startCluster(3, 89);
    const leader = awaitLeader(cluster);
    writeAcknowledged(cluster, leader, "before");
    expect(cluster.proposeMembershipChange(leader.id, { type: "remove", node: leader.id })).toBe(true);
    const successor = awaitLeader(cluster, (node) => node.id !== leader.id);
    expect(cluster.runUntil(() => leader.removed, ELECTION_BOUND_MS)).toBe(true);
    const remaining = [...cluster.nodes.keys()].filter((id) => id !== leader.id).sort();
    expect([...successor.status().membership.voters].sort()).toEqual(remaining);
    writeAcknowledged(cluster, cluster.leader() ?? successor, "after");
    cluster.restart(leader.id);
    expect(leader.up).toBe(false);
  });

  it("a follower far behind the compacted log is caught up by a chunked snapshot", () => {
    const cluster = startCluster(3, 144);
    const leader = awaitLeader(cluster);
    const follower = [...cluster.nodes.keys()].find((id) => id !== leader.id) ?? "";
    cluster.crash(follower);
    for (let key = 0; key < 60; key++) writeAcknowledged(cluster, leader, `key-${key}`);
    expect(leader.storage.firstIndex()).toBeGreaterThan(cluster.node(follower).storage.lastIndex() + 1);
    const chunksBefore = cluster.network.statistics.deliveredByType.get("installSnapshot") ?? 0;
    cluster.restart(follower);
    const target = leader.status().commit;
    expect(cluster.runUntil(() => cluster.node(follower).machine.appliedIndex >= target, COMMIT_BOUND_MS)).toBe(true);
    // 60 registers do not fit one 64-byte chunk: the snapshot went in pieces.
    expect((cluster.network.statistics.deliveredByType.get("installSnapshot") ?? 0) - chunksBefore).toBeGreaterThan(2);
    expect(cluster.statistics.snapshotsInstalled).toBeGreaterThanOrEqual(1);
    expect(cluster.node(follower).machine.keys()).toEqual(leader.machine.keys());
    cluster.history.checkNoWriteLost(follower, (key) => cluster.node(follower).machine.read(key));
  });
});

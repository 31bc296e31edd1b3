import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../../src/raft/memory-storage.js";
import { Cluster, membershipOf } from "./cluster.js";

const membership = membershipOf(["n1", "n2", "n3"]);

/** n1 leads with six entries everywhere; then n3 restarts having kept only `keptEntries` of them. */
function clusterWithForgetfulFollower(keptEntries: number, compactLeader = false): Cluster {
  const cluster = Cluster.of(["n1", "n2", "n3"]);
  cluster.elect("n1");
  for (const value of ["a", "b", "c", "d", "e"]) cluster.propose("n1", value);
  cluster.tick(1);
  if (compactLeader) cluster.member("n1").compact();
  const n3 = cluster.member("n3");
  const kept = n3.storage.entries(1, keptEntries + 1, Number.POSITIVE_INFINITY);
  const { term, vote } = n3.storage.initialState().hardState;
  n3.storage = new MemoryStorage({ membership, entries: kept, hardState: { term, vote, commit: keptEntries } });
  n3.applied = [];
  n3.restart(7);
  return cluster;
}

function logOf(cluster: Cluster, id: string): number[] {
  const storage = cluster.member(id).storage;
  return storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Number.POSITIVE_INFINITY).map((entry) => entry.term);
}

describe("a follower that lost what it acknowledged is caught up by the same leader", () => {
  it("without resetProgress an idle leader keeps the old match: the follower stays behind", () => {
    const cluster = clusterWithForgetfulFollower(2);
    cluster.tick(5);
    expect(cluster.node("n1").status().progress["n3"]?.match).toBe(6);
    expect(cluster.node("n3").status().lastIndex).toBe(2);
  });

  it("resetProgress makes the leader probe again from its last index and repair the follower's log", () => {
    const cluster = clusterWithForgetfulFollower(2);
    const leader = cluster.node("n1");
    const commit = leader.status().commit;
    leader.resetProgress("n3");
    expect(leader.status().progress["n3"]).toEqual({ match: 0, next: 7, state: "probe" });
    expect(leader.status().commit).toBe(commit);
    cluster.stabilize();
    expect(logOf(cluster, "n3")).toEqual(logOf(cluster, "n1"));
    expect(leader.status().progress["n3"]).toMatchObject({ match: 6, state: "replicate" });
    cluster.tick(1);
    expect(cluster.member("n3").applied).toEqual(["a", "b", "c", "d", "e"]);
    expect(leader.status().role).toBe("leader");
  });

  it("resetProgress catches up a wiped follower by snapshot when the leader compacted its log", () => {
    const cluster = clusterWithForgetfulFollower(0, true);
    cluster.node("n1").resetProgress("n3");
    cluster.stabilize();
    expect(cluster.member("n3").storage.snapshotMetadata().index).toBe(6);
    expect(cluster.member("n3").applied).toEqual(["a", "b", "c", "d", "e"]);
    cluster.propose("n1", "f");
    expect(cluster.member("n3").applied.at(-1)).toBe("f");
  });

  it("even without resetProgress the next write repairs it: a rejection at the match is not ignored as stale", () => {
    const cluster = clusterWithForgetfulFollower(2);
    cluster.propose("n1", "f");
    cluster.tick(2);
    expect(logOf(cluster, "n3")).toEqual(logOf(cluster, "n1"));
    expect(cluster.member("n3").applied).toEqual(["a", "b", "c", "d", "e", "f"]);
  });

  it("resetProgress is a no-op on a follower and for unknown peers", () => {
    const cluster = clusterWithForgetfulFollower(2);
    const follower = cluster.node("n2");
    const before = follower.status();
    follower.resetProgress("n3");
    cluster.node("n1").resetProgress("n9");
    expect(follower.status()).toEqual(before);
    expect(cluster.node("n1").hasReady()).toBe(false);
  });
});

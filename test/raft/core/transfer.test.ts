import { describe, expect, it } from "vitest";
import { Cluster, command, membershipOf } from "./cluster.js";

describe("leadership transfer (dissertation §3.10)", () => {
  it("hands leadership to an up-to-date follower with TimeoutNow in the next term", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.propose("n1", "a");
    cluster.node("n1").transferLeadership("n2");
    cluster.stabilize();
    expect(cluster.deliveredOf("timeoutNow")).toEqual([expect.objectContaining({ from: "n1", to: "n2" })]);
    expect(cluster.leader()).toBe("n2");
    expect(cluster.node("n2").status().term).toBe(2);
    expect(cluster.node("n1").status().leader).toBe("n2");
    cluster.propose("n2", "b");
    expect(cluster.member("n1").applied).toEqual(["a", "b"]);
  });

  it("brings a lagging target up to date first and refuses proposals meanwhile", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.dropWhen = (message) => message.type === "appendEntries" && message.to === "n3";
    cluster.propose("n1", "a", "b", "c");
    cluster.dropWhen = () => false;
    cluster.node("n1").transferLeadership("n3");
    expect(() => cluster.node("n1").propose([command("x")])).toThrow(expect.objectContaining({ code: "TRANSFERRING" }) as Error);
    expect(cluster.deliveredOf("timeoutNow")).toEqual([]);
    // The lost appends are noticed at the next heartbeat answer; n3 is then caught up.
    cluster.tick(2);
    expect(cluster.deliveredOf("timeoutNow")).toEqual([expect.objectContaining({ from: "n1", to: "n3" })]);
    expect(cluster.leader()).toBe("n3");
    expect(cluster.node("n3").status().lastIndex).toBe(5);
    expect(cluster.member("n3").applied).toEqual(["a", "b", "c"]);
  });

  it("aborts after an election timeout when the target cannot be reached", () => {
    const cluster = Cluster.of(["n1", "n2", "n3"]);
    cluster.elect("n1");
    cluster.isolate("n3");
    cluster.node("n1").transferLeadership("n3");
    expect(() => cluster.node("n1").propose([command("x")])).toThrow(expect.objectContaining({ code: "TRANSFERRING" }) as Error);
    cluster.tick(10, ["n1", "n2"]);
    expect(cluster.leader()).toBe("n1");
    expect(cluster.node("n1").propose([command("x")]).term).toBe(1);
  });

  it("refuses a target that is not a voter, and any transfer on a follower", () => {
    const membership = membershipOf(["n1", "n2"], ["l1"]);
    const cluster = new Cluster({ n1: { membership }, n2: { membership }, l1: { membership } });
    cluster.elect("n1");
    expect(() => cluster.node("n1").transferLeadership("l1")).toThrow(expect.objectContaining({ code: "INVALID_MEMBERSHIP_CHANGE" }) as Error);
    expect(() => cluster.node("n2").transferLeadership("n2")).toThrow(expect.objectContaining({ code: "NOT_LEADER", leader: "n1" }) as Error);
  });
});

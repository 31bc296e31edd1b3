import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FAULT_GROUPS, parseFaultGroups, partitionLinks, planNemesis, type FaultGroup, type NemesisPlanOptions } from "../../jepsen-lite/nemesis.js";

const THREE = ["n1", "n2", "n3"];
const FIVE = ["n1", "n2", "n3", "n4", "n5"];

function options(seed: number, overrides: Partial<NemesisPlanOptions> = {}): NemesisPlanOptions {
  return { seed, nodeIds: THREE, groups: [...FAULT_GROUPS], durationMs: 60_000, ...overrides };
}

const groupsArbitrary = fc.subarray([...FAULT_GROUPS], { minLength: 1 });

describe("planNemesis", () => {
  it("is a function of its options: the same seed gives the same plan, another seed another", () => {
    expect(planNemesis(options(42))).toEqual(planNemesis(options(42)));
    expect(planNemesis(options(42))).not.toEqual(planNemesis(options(43)));
  });

  it("staggers faults 1–5 s apart, holds each 1–5 s, one at a time, all inside the run", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), groupsArbitrary, fc.constantFrom(THREE, FIVE), (seed, groups, nodeIds) => {
        const plan = planNemesis(options(seed, { groups, nodeIds }));
        expect(plan.length).toBeGreaterThan(0);
        let previousEndMs = 0;
        for (const fault of plan) {
          const gapMs = fault.startMs - previousEndMs;
          expect(gapMs).toBeGreaterThanOrEqual(1000);
          expect(gapMs).toBeLessThanOrEqual(5000);
          expect(fault.durationMs).toBeLessThanOrEqual(5000);
          expect(fault.startMs + fault.durationMs).toBeLessThanOrEqual(60_000);
          previousEndMs = fault.startMs + fault.durationMs;
        }
        // Only the last fault may be cut short by the end of the run.
        plan.slice(0, -1).forEach((fault) => expect(fault.durationMs).toBeGreaterThanOrEqual(1000));
      }),
      { numRuns: 200 },
    );
  });

  it("draws only kinds of the chosen groups, nodes of the cluster, and a ring only with five nodes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), groupsArbitrary, fc.constantFrom(THREE, FIVE), (seed, groups, nodeIds) => {
        for (const fault of planNemesis(options(seed, { groups, nodeIds }))) {
          expect(groups.some((group) => fault.kind.startsWith(group))).toBe(true);
          expect(fault.nodes.every((node) => nodeIds.includes(node))).toBe(true);
          expect(new Set(fault.nodes).size).toBe(fault.nodes.length);
          if (fault.kind === "partition-ring") expect(nodeIds).toHaveLength(5);
          if (fault.kind === "kill-minority") expect(fault.nodes.length).toBeLessThan(nodeIds.length / 2);
          if (fault.kind === "clock-offset") expect(Math.abs(fault.clockOffsetMs ?? Infinity)).toBeLessThanOrEqual(2000);
          if (fault.kind === "partition-delay") expect(fault.linkDelayMs).toBeGreaterThanOrEqual(20);
          else if (fault.kind.startsWith("partition")) expect(["drop", "refuse"]).toContain(fault.linkMode);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("draws groups in rounds: every chosen group once before any group a second time", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), groupsArbitrary, (seed, groups) => {
        // Short faults and gaps, so that the plan holds several rounds.
        const plan = planNemesis(options(seed, { groups, minGapMs: 100, maxGapMs: 200, minFaultMs: 100, maxFaultMs: 200 }));
        const groupOf = (kind: string): FaultGroup | undefined => groups.find((group) => kind.startsWith(group));
        for (let start = 0; start + groups.length <= plan.length; start += groups.length) {
          const round = plan.slice(start, start + groups.length).map((fault) => groupOf(fault.kind));
          expect(new Set(round).size).toBe(groups.length);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("plans every group of `all` within a 60 s run of 3 nodes for seeds 1..10", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const kinds = planNemesis(options(seed)).map((fault) => fault.kind);
      for (const group of FAULT_GROUPS) expect(kinds.some((kind) => kind.startsWith(group)), `seed ${seed}, ${group}`).toBe(true);
    }
  });

  it("plans nothing without fault groups", () => {
    expect(planNemesis(options(1, { groups: [] }))).toEqual([]);
  });
});

describe("parseFaultGroups", () => {
  it("reads all, none and lists; refuses unknown names", () => {
    expect(parseFaultGroups("all")).toEqual([...FAULT_GROUPS]);
    expect(parseFaultGroups("none")).toEqual([]);
    expect(parseFaultGroups("kill,partition")).toEqual<FaultGroup[]>(["kill", "partition"]);
    expect(() => parseFaultGroups("kill,meteor")).toThrow(/meteor/);
  });
});

/** Which nodes `from` can still send to, given the cut directed links. */
function reachable(nodes: readonly string[], cut: ReadonlyArray<readonly [string, string]>, from: string): string[] {
  return nodes.filter((to) => to !== from && !cut.some(([left, right]) => left === from && right === to));
}

describe("partitionLinks", () => {
  it("isolating the leader cuts it off both ways and leaves the rest connected", () => {
    const cut = partitionLinks("partition-leader", FIVE, "n3");
    expect(cut).toHaveLength(8);
    expect(reachable(FIVE, cut, "n3")).toEqual([]);
    for (const node of FIVE.filter((id) => id !== "n3")) expect(reachable(FIVE, cut, node)).toEqual(FIVE.filter((id) => id !== "n3" && id !== node));
  });

  it("a split puts the first minority of nodes on their own side", () => {
    const cut = partitionLinks("partition-split", FIVE, null);
    expect(reachable(FIVE, cut, "n1")).toEqual(["n2"]);
    expect(reachable(FIVE, cut, "n3")).toEqual(["n4", "n5"]);
    expect(reachable(THREE, partitionLinks("partition-split", THREE, null), "n1")).toEqual([]);
  });

  it("a ring leaves each of five nodes its two neighbours: a different majority for each", () => {
    const cut = partitionLinks("partition-ring", FIVE, null);
    expect(cut).toHaveLength(10);
    expect(reachable(FIVE, cut, "n1")).toEqual(["n2", "n5"]);
    expect(reachable(FIVE, cut, "n3")).toEqual(["n2", "n4"]);
  });

  it("one way: the leader hears everyone, nobody hears the leader", () => {
    const cut = partitionLinks("partition-one-way", THREE, "n2");
    expect(cut).toEqual([["n2", "n1"], ["n2", "n3"]]);
    expect(reachable(THREE, cut, "n1")).toEqual(["n2", "n3"]);
  });
});

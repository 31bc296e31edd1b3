import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { runSeed } from "./workload.js";

/**
 * Whole simulated runs as a property: for any seed, a cluster under random traffic, crashes
 * (also in the middle of a Ready), partitions, membership changes and leadership transfers keeps
 * every safety property, then recovers once the faults heal. A failure prints the seed; replay it
 * with `SEED=<seed> npm run sim -- --trace`.
 */
describe("simulated runs", () => {
  it("keep Raft's safety properties and recover after faults heal, for any seed", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x7fff_ffff }), (seed) => {
        const report = runSeed(seed);
        expect(report.simulatedMs).toBeGreaterThan(1_000);
        expect(report.acknowledgedWrites).toBeGreaterThan(0);
      }),
      { numRuns: 100 },
    );
  });

  it("replay exactly: the same seed gives the same run", () => {
    expect(runSeed(2024)).toEqual(runSeed(2024));
  });
});

import { describe, expect, it } from "vitest";
import { REFUSAL_REASONS, type RefusalReason } from "../../src/raft/types.js";
import { runSeed } from "./workload.js";

const SEEDS = 150;
/** Per workload step (5 ms of simulated time): a forged message every 25 ms on average. */
const FORGERY_PROBABILITY = 0.2;
const TIMEOUT_MS = 120_000;

function add(totals: Map<RefusalReason, number>, counts: ReadonlyMap<RefusalReason, number>): void {
  for (const [reason, count] of counts) totals.set(reason, (totals.get(reason) ?? 0) + count);
}

describe("simulated runs with a forging peer", () => {
  it("refuse every detectably forged message, fire no assertion, and stay linearizable", { timeout: TIMEOUT_MS }, () => {
    const forged = new Map<RefusalReason, number>();
    const refused = new Map<RefusalReason, number>();
    let acknowledgedWrites = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      try {
        const report = runSeed(seed, null, { forgeryProbability: FORGERY_PROBABILITY });
        // Each forgery lands while the state it contradicts holds: exactly one refusal each.
        expect(report.refusedMessages).toEqual(report.forgedMessages);
        add(forged, report.forgedMessages);
        add(refused, report.refusedMessages);
        acknowledgedWrites += report.acknowledgedWrites;
      } catch (error) {
        throw new Error(`seed ${seed} failed with forged traffic: ${String(error)}`, { cause: error });
      }
    }
    expect([...refused.keys()].sort()).toEqual([...REFUSAL_REASONS].sort());
    expect(acknowledgedWrites).toBeGreaterThan(SEEDS);
  });

  it("replay exactly with forged traffic too", () => {
    const options = { forgeryProbability: FORGERY_PROBABILITY };
    expect(runSeed(77, null, options)).toEqual(runSeed(77, null, options));
  });
});

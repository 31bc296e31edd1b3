import { describe, expect, it } from "vitest";
import { runSeed } from "./workload.js";

/** The CI sweep: seeds 1..1000 in batches (each batch its own test, so a timeout names its range). */
const SEED_COUNT = 1_000;
const BATCH_SIZE = 100;
const BATCH_TIMEOUT_MS = 120_000;

describe("simulator seed sweep", () => {
  for (let first = 1; first <= SEED_COUNT; first += BATCH_SIZE) {
    const last = first + BATCH_SIZE - 1;
    it(`seeds ${first}..${last} keep every safety and liveness check`, { timeout: BATCH_TIMEOUT_MS }, () => {
      let acknowledgedWrites = 0;
      let peakWritesInFlight = 0;
      let writesLostInCrashes = 0;
      for (let seed = first; seed <= last; seed++) {
        try {
          const report = runSeed(seed);
          acknowledgedWrites += report.acknowledgedWrites;
          peakWritesInFlight = Math.max(peakWritesInFlight, report.peakWritesInFlight);
          writesLostInCrashes += report.writesLostInCrashes;
        } catch (error) {
          throw new Error(`seed ${seed} failed (replay: SEED=${seed} npm run sim -- --trace): ${String(error)}`, { cause: error });
        }
      }
      expect(acknowledgedWrites).toBeGreaterThan(BATCH_SIZE);
      // The pipeline the node runs: several writes in flight, and crashes that lose some of them.
      expect(peakWritesInFlight).toBeGreaterThan(1);
      expect(writesLostInCrashes).toBeGreaterThan(0);
    });
  }
});
